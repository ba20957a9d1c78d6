// Mixed precision support: a dynamic loss scaler with torch.cuda.amp.GradScaler's semantics
// (scale starts at 2^16; ×2 after 2000 steps without inf/NaN; ×0.5 and the step skipped when a
// gradient is inf/NaN), and the check of whether a backend can run f16 arithmetic at all. The f16
// products themselves come from withAutocast (src/tensor/mode.ts), which the engine wraps around
// each step's forward and backward when AMP is on.

import type { Tensor } from "../tensor/tensor.ts";
import type { Backend } from "../backend/backend.ts";
import { noGrad } from "../autograd/tape.ts";
import { keep } from "../tensor/memory.ts";
import * as ops from "../ops/index.ts";
import { gradNormSq } from "../optim/clip.ts";

export interface GradScalerOptions {
  initScale?: number;
  growthFactor?: number;
  backoffFactor?: number;
  growthInterval?: number;
}

export interface GradScalerState {
  scale: number;
  growthTracker: number;
}

export class GradScaler {
  scale: number;
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;
  /** clean steps since the last growth or backoff */
  growthTracker = 0;
  /** steps skipped for inf/NaN gradients so far */
  skipped = 0;

  constructor(o: GradScalerOptions = {}) {
    this.scale = o.initScale ?? 2 ** 16;
    this.growthFactor = o.growthFactor ?? 2;
    this.backoffFactor = o.backoffFactor ?? 0.5;
    this.growthInterval = o.growthInterval ?? 2000;
  }

  /** loss × scale: call backward on this. */
  scaleLoss(loss: Tensor): Tensor {
    return loss.mul(this.scale);
  }

  /**
   * Divides every gradient by the scale and reports whether all are finite (one read-back of the
   * squared norm). Returns the unscaled squared norm (a device tensor) for clipping.
   */
  async unscale(params: readonly Tensor[]): Promise<{ finite: boolean; gradNormSq: Tensor | null }> {
    const inv = 1 / this.scale;
    noGrad(() => {
      for (const p of params) {
        if (!p.grad) continue;
        const g = keep(ops.mul(p.grad, inv));
        p.grad.dispose();
        p.grad = g;
      }
    });
    if (!params.some((p) => p.grad)) return { finite: true, gradNormSq: null };
    const sq = gradNormSq(params);
    const v = await sq.item();
    return { finite: Number.isFinite(v), gradNormSq: sq };
  }

  /** After a step: back off (and count a skip) on inf/NaN, else grow every growthInterval clean steps. */
  update(finite: boolean): void {
    if (!finite) {
      this.scale *= this.backoffFactor;
      this.growthTracker = 0;
      this.skipped++;
      return;
    }
    if (++this.growthTracker >= this.growthInterval) {
      this.scale *= this.growthFactor;
      this.growthTracker = 0;
    }
  }

  stateDict(): GradScalerState {
    return { scale: this.scale, growthTracker: this.growthTracker };
  }
  loadStateDict(s: GradScalerState): void {
    this.scale = s.scale;
    this.growthTracker = s.growthTracker;
  }
}

/**
 * Whether `backend` can train with f16 matmuls under withAutocast: null when it can (WebGPU with
 * shader-f16), else the reason it cannot.
 */
export function ampUnavailable(backend: Backend): string | null {
  if (backend.autocastF16) return null;
  if (backend.name === "wasm") return "the wasm backend has no f16 arithmetic (WebAssembly SIMD has no f16 lanes)";
  if (backend.name === "webgpu") return "this WebGPU adapter lacks the shader-f16 feature";
  return `the ${backend.name} backend has no f16 matmul`;
}
