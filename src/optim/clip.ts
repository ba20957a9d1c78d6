// Global gradient norm, as torch.nn.utils.clip_grad_norm_ measures it: sqrt(Σ_p ||grad_p||²).
// gradNormSq leaves the squared norm on the device (no read-back) for AdamW's fused clipping;
// clipGradNorm is the eager PyTorch-style version that scales the gradients in place.

import type { Tensor } from "../tensor/tensor.ts";
import { noGrad } from "../autograd/tape.ts";
import { sumSquares } from "../ops/reduce.ts";
import * as ops from "../ops/index.ts";
import { keep } from "../tensor/memory.ts";

/** Σ_p ||p.grad||² over params with a gradient, as a one-element device tensor. */
export function gradNormSq(params: readonly Tensor[]): Tensor {
  let acc: Tensor | undefined;
  for (const p of params) {
    if (!p.grad) continue;
    acc = sumSquares(p.grad, acc);
  }
  if (!acc) throw new Error("[clip] no parameter has a gradient");
  return acc;
}

/** Scales gradients so their global norm is at most maxNorm; returns the norm before clipping. */
export async function clipGradNorm(params: readonly Tensor[], maxNorm: number): Promise<number> {
  const sq = gradNormSq(params);
  const norm = Math.sqrt(await sq.item());
  sq.dispose();
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) {
    noGrad(() => {
      for (const p of params) {
        if (!p.grad) continue;
        const scaled = keep(ops.mul(p.grad, coef));
        p.grad.dispose();
        p.grad = scaled;
      }
    });
  }
  return norm;
}
