// AdamW (Loshchilov & Hutter 2019) with torch.optim.AdamW's exact semantics, one fused `adamw`
// kernel launch per parameter, all of a step's launches given to the backend together
// (launchGroup: the wasm backend runs them as one multi-tensor job over its threads, see
// src/backend/wasm/multi_tensor.ts; other backends one after another). Gradient clipping by global norm is folded into the same launch:
// pass the squared norm (a device tensor from gradNormSq) and maxNorm, and no value ever has to
// come back to the host. Parameter groups carry their own weight decay (nanoGPT decays only
// tensors with rank >= 2).

import { zeros, type Tensor } from "../tensor/tensor.ts";
import type { Backend, KernelLaunch } from "../backend/backend.ts";
import { launchGroup, launchOf } from "../ops/dispatch.ts";
import { Optimizer, type ParamGroup, type ParamState, type StepOptions, type UpdateContext } from "./optimizer.ts";

export type { ParamGroup, StepOptions } from "./optimizer.ts";

export interface AdamWOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

export class AdamW extends Optimizer {
  readonly type = "adamw";
  readonly stateKeys = ["m", "v"] as const;
  readonly betas: [number, number];
  readonly eps: number;

  constructor(params: Tensor[] | ParamGroup[], options: AdamWOptions = {}) {
    super(params, { lr: options.lr ?? 1e-3, weightDecay: options.weightDecay ?? 0.01 });
    this.betas = options.betas ?? [0.9, 0.999];
    this.eps = options.eps ?? 1e-8;
    for (const [name, value] of [["eps", this.eps], ["beta1", this.betas[0]], ["beta2", this.betas[1]]] as const) {
      if (!(value >= 0) || (name !== "eps" && value >= 1)) throw new Error(`[adamw] invalid ${name}: ${value}`);
    }
  }

  protected initState(p: Tensor): ParamState {
    return { m: zeros(p.shape, { backend: p.backend }), v: zeros(p.shape, { backend: p.backend }) };
  }

  /** this step's launches per backend, until step() hands them over */
  #pending = new Map<Backend, KernelLaunch[]>();

  override step(options: StepOptions = {}): void {
    this.#pending.clear();
    try {
      super.step(options);
      for (const [backend, launches] of this.#pending) launchGroup(backend, launches); // independent: one parameter each
    } finally {
      this.#pending.clear();
    }
  }

  protected update(p: Tensor, grad: Tensor, s: ParamState, ctx: UpdateContext): void {
    let launches = this.#pending.get(p.backend);
    if (!launches) this.#pending.set(p.backend, (launches = []));
    launches.push(launchOf("adamw", [grad, ctx.gradNormSq ?? null], [p, s.m, s.v], {
      n: p.size,
      lr: ctx.lr,
      beta1: this.betas[0],
      beta2: this.betas[1],
      eps: this.eps,
      weightDecay: ctx.weightDecay,
      step: this.stepCount,
      maxNorm: ctx.maxNorm,
    }));
  }

  protected hyper(): Record<string, number> {
    return { beta1: this.betas[0], beta2: this.betas[1], eps: this.eps };
  }
}
