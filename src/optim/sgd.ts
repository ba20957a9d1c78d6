// SGD with momentum, dampening, Nesterov momentum and (L2, coupled) weight decay, with
// torch.optim.SGD's exact semantics:
//   g ← grad·clip + weightDecay·p
//   buf ← g on the first step, else momentum·buf + (1 − dampening)·g
//   g ← g + momentum·buf (nesterov) or buf
//   p ← p − lr·g
// Built from elementwise ops (no fused kernel): the results are written back into the
// parameter's and the buffer's own storage. Clipping by global norm needs no read-back.

import type { Tensor } from "../tensor/tensor.ts";
import * as ops from "../ops/index.ts";
import { assign, clipCoefficient, Optimizer, type ParamGroup, type ParamState, type UpdateContext, type StepOptions } from "./optimizer.ts";
import { keep, scope } from "../tensor/memory.ts";

export interface SGDOptions {
  lr?: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
}

export class SGD extends Optimizer {
  readonly type = "sgd";
  readonly momentum: number;
  readonly dampening: number;
  readonly nesterov: boolean;
  #clip: Tensor | null = null;

  constructor(params: Tensor[] | ParamGroup[], options: SGDOptions = {}) {
    super(params, { lr: options.lr ?? 1e-3, weightDecay: options.weightDecay ?? 0 });
    this.momentum = options.momentum ?? 0;
    this.dampening = options.dampening ?? 0;
    this.nesterov = options.nesterov ?? false;
    if (!(this.momentum >= 0)) throw new Error(`[sgd] invalid momentum: ${this.momentum}`);
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw new Error("[sgd] nesterov momentum requires momentum > 0 and dampening 0");
    }
  }

  get stateKeys(): readonly string[] {
    return this.momentum !== 0 ? ["momentum_buffer"] : [];
  }

  override step(options: StepOptions = {}): void {
    scope(() => {
      // one clip coefficient per step, shared by every parameter
      this.#clip = (options.maxNorm ?? 0) > 0 && options.gradNormSq ? clipCoefficient(options.gradNormSq, options.maxNorm!) : null;
      try {
        super.step(options);
      } finally {
        this.#clip = null;
      }
    });
  }

  protected initState(): ParamState {
    // the momentum buffer is a copy of the first (decayed) gradient: update() makes it
    return {};
  }

  protected update(p: Tensor, grad: Tensor, s: ParamState, ctx: UpdateContext): void {
    scope(() => {
      let g = this.#clip ? ops.mul(grad, this.#clip) : grad;
      if (ctx.weightDecay !== 0) g = ops.add(g, ops.mul(p, ctx.weightDecay));
      if (this.momentum !== 0) {
        let buf = s.momentum_buffer;
        if (!buf) buf = s.momentum_buffer = keep(ops.affine(g, 1, 0));
        else assign(buf, ops.add(ops.mul(buf, this.momentum), ops.mul(g, 1 - this.dampening)));
        g = this.nesterov ? ops.add(g, ops.mul(buf, this.momentum)) : buf;
      }
      assign(p, ops.sub(p, ops.mul(g, ctx.lr)));
    });
  }

  protected hyper(): Record<string, number | boolean> {
    return { momentum: this.momentum, dampening: this.dampening, nesterov: this.nesterov };
  }
}
