// AdamW (Loshchilov & Hutter 2019) with torch.optim.AdamW's exact semantics, one fused `adamw`
// kernel launch per parameter. Gradient clipping by global norm is folded into the same launch:
// pass the squared norm (a device tensor from gradNormSq) and maxNorm, and no value ever has to
// come back to the host. Parameter groups carry their own weight decay (nanoGPT decays only
// tensors with rank >= 2).

import { keep } from "../tensor/memory.ts";
import { zeros, type Tensor } from "../tensor/tensor.ts";
import { launch } from "../ops/dispatch.ts";

export interface ParamGroup {
  params: Tensor[];
  weightDecay?: number;
  /** per-group learning-rate multiplier (default 1) */
  lrScale?: number;
}

export interface AdamWOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

export interface StepOptions {
  /** squared global gradient norm [1] (from gradNormSq); with maxNorm, clips as clip_grad_norm_ */
  gradNormSq?: Tensor;
  maxNorm?: number;
}

interface ParamState {
  m: Tensor;
  v: Tensor;
}

export class AdamW {
  lr: number;
  readonly betas: [number, number];
  readonly eps: number;
  readonly groups: Required<ParamGroup>[];
  /** number of step() calls so far (the bias-correction step is stepCount) */
  stepCount = 0;
  readonly #state = new Map<Tensor, ParamState>();

  constructor(params: Tensor[] | ParamGroup[], options: AdamWOptions = {}) {
    this.lr = options.lr ?? 1e-3;
    this.betas = options.betas ?? [0.9, 0.999];
    this.eps = options.eps ?? 1e-8;
    const wd = options.weightDecay ?? 0.01;
    const groups: ParamGroup[] = params.length > 0 && "params" in (params[0] as object) ? (params as ParamGroup[]) : [{ params: params as Tensor[] }];
    this.groups = groups.map((g) => ({ params: g.params, weightDecay: g.weightDecay ?? wd, lrScale: g.lrScale ?? 1 }));
    for (const [name, value] of [["lr", this.lr], ["eps", this.eps], ["beta1", this.betas[0]], ["beta2", this.betas[1]]] as const) {
      if (!(value >= 0) || ((name === "beta1" || name === "beta2") && value >= 1)) {
        throw new Error(`[adamw] invalid ${name}: ${value}`);
      }
    }
  }

  /** Every parameter, in group order. */
  get params(): Tensor[] {
    return this.groups.flatMap((g) => g.params);
  }

  /** Applies one update to every parameter that has a gradient. */
  step({ gradNormSq, maxNorm = 0 }: StepOptions = {}): void {
    if (maxNorm > 0 && !gradNormSq) throw new Error("[adamw] maxNorm needs gradNormSq (see gradNormSq())");
    this.stepCount++;
    for (const group of this.groups) {
      for (const p of group.params) {
        if (!p.grad) continue;
        const s = this.state(p);
        launch("adamw", [p.grad, gradNormSq ?? null], [p, s.m, s.v], {
          n: p.size,
          lr: this.lr * group.lrScale,
          beta1: this.betas[0],
          beta2: this.betas[1],
          eps: this.eps,
          weightDecay: group.weightDecay,
          step: this.stepCount,
          maxNorm,
        });
      }
    }
  }

  /** Drops every parameter's gradient (set_to_none, as PyTorch's default). */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** The moment buffers of p (created as zeros on first use, kept). */
  state(p: Tensor): ParamState {
    let s = this.#state.get(p);
    if (!s) {
      s = { m: keep(zeros(p.shape, { backend: p.backend })), v: keep(zeros(p.shape, { backend: p.backend })) };
      this.#state.set(p, s);
    }
    return s;
  }

  dispose(): void {
    for (const s of this.#state.values()) {
      s.m.dispose();
      s.v.dispose();
    }
    this.#state.clear();
  }
}
