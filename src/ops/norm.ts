// Normalization layers over the last dim: layerNorm (GPT-2) and rmsNorm (Llama family), each one
// fused kernel forward and one fused kernel backward (which also yields the weight gradients).

import type { Tensor } from "../tensor/tensor.ts";
import { record } from "../autograd/tape.ts";
import { dispose } from "../tensor/memory.ts";
import { alloc, backendOf, launch } from "./dispatch.ts";
import { checkFloat } from "./elementwise.ts";

/** (x − mean)/sqrt(var + eps)·weight + bias over the last dim (biased variance, as PyTorch). */
export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps = 1e-5): Tensor {
  const backend = backendOf("layer_norm", [x, weight, bias]);
  checkFloat("layer_norm", x);
  const C = x.shape[x.rank - 1];
  checkVector("layer_norm", weight, C);
  checkVector("layer_norm", bias, C);
  const rows = x.size / C;
  const out = alloc(backend, x.shape);
  const mean = alloc(backend, [rows]);
  const rstd = alloc(backend, [rows]);
  launch("layer_norm", [x, weight, bias], [out, mean, rstd], { rows, C, eps });
  const result = record(out, "layer_norm", [x, weight, bias], { x, weight, mean, rstd });
  if (!result.node) dispose([mean, rstd]); // only the backward reads them
  return result;
}

/** x / sqrt(mean(x²) + eps)·weight over the last dim. */
export function rmsNorm(x: Tensor, weight: Tensor, eps = 1e-6): Tensor {
  const backend = backendOf("rms_norm", [x, weight]);
  checkFloat("rms_norm", x);
  const C = x.shape[x.rank - 1];
  checkVector("rms_norm", weight, C);
  const rows = x.size / C;
  const out = alloc(backend, x.shape);
  const rstd = alloc(backend, [rows]);
  launch("rms_norm", [x, weight], [out, rstd], { rows, C, eps });
  const result = record(out, "rms_norm", [x, weight], { x, weight, rstd });
  if (!result.node) rstd.dispose(); // only the backward reads it
  return result;
}

function checkVector(op: string, t: Tensor, C: number): void {
  if (t.rank !== 1 || t.shape[0] !== C) throw new Error(`[${op}] ${t.describe()} should be [${C}] (the last dim of x)`);
}
