// The optimizer protocol (torch.optim.Optimizer's surface, MLX's init/apply split): parameter
// groups with their own learning-rate scale and weight decay, step(), zeroGrad(), and a state dict
// (hyperparameters + per-parameter buffers) that checkpoints save and load. Subclasses say how to
// make a parameter's state (initState) and how to update it (update). State exists only for the
// parameters an optimizer owns and only once they have had a gradient: a frozen base model costs
// no buffers. Several optimizers may run in one step, each over its own parameters.

import { keep } from "../tensor/memory.ts";
import { zeros, type Tensor } from "../tensor/tensor.ts";
import { copyKernel } from "../ops/movement.ts";
import { noGrad } from "../autograd/tape.ts";
import * as ops from "../ops/index.ts";

export interface ParamGroup {
  params: Tensor[];
  weightDecay?: number;
  /** this group's learning rate (default: the optimizer's); becomes lrScale = lr / optimizer lr */
  lr?: number;
  /** per-group learning-rate multiplier (default 1); schedules scale the optimizer's lr, groups follow */
  lrScale?: number;
}

export interface ResolvedGroup {
  params: Tensor[];
  weightDecay: number;
  lrScale: number;
}

export interface StepOptions {
  /** squared global gradient norm [1] (from gradNormSq); with maxNorm, clips as clip_grad_norm_ */
  gradNormSq?: Tensor;
  maxNorm?: number;
}

/** Named buffers of one parameter (AdamW: m, v; SGD: momentum_buffer). */
export type ParamState = Record<string, Tensor>;

/** What stateDict() returns: plain numbers (JSON) plus each owned parameter's buffers. */
export interface OptimizerStateDict {
  type: string;
  /** step() calls so far */
  step: number;
  lr: number;
  groups: { weightDecay: number; lrScale: number }[];
  /** owned parameters that have state, with their buffers (the tensors are the optimizer's own) */
  state: Map<Tensor, ParamState>;
  /** optimizer-specific numbers (betas, momentum, ...) */
  hyper: Record<string, number | boolean>;
}

export abstract class Optimizer {
  /** "adamw", "sgd", ...: written to checkpoints, checked on load */
  abstract readonly type: string;
  /** base learning rate; each group uses lr × its lrScale (schedules set this every step) */
  lr: number;
  readonly groups: ResolvedGroup[];
  /** number of step() calls so far (AdamW's bias-correction step) */
  stepCount = 0;
  readonly #state = new Map<Tensor, ParamState>();
  readonly #owned: Set<Tensor>;

  constructor(params: Tensor[] | ParamGroup[], defaults: { lr: number; weightDecay: number }) {
    this.lr = defaults.lr;
    if (!(this.lr >= 0)) throw new Error(`[optim] invalid lr: ${this.lr}`);
    const groups: ParamGroup[] = params.length > 0 && "params" in (params[0] as object) ? (params as ParamGroup[]) : [{ params: params as Tensor[] }];
    this.groups = groups.map((g) => ({
      params: g.params,
      weightDecay: g.weightDecay ?? defaults.weightDecay,
      lrScale: g.lrScale ?? (g.lr !== undefined ? (this.lr > 0 ? g.lr / this.lr : 1) : 1),
    }));
    this.#owned = new Set(this.params);
    if (this.#owned.size !== this.params.length) throw new Error("[optim] a parameter appears twice in the groups");
  }

  /** Every parameter, in group order. */
  get params(): Tensor[] {
    return this.groups.flatMap((g) => g.params);
  }

  /** True when p is one of this optimizer's parameters. */
  owns(p: Tensor): boolean {
    return this.#owned.has(p);
  }

  /** The learning rate group i uses now. */
  groupLr(i: number): number {
    return this.lr * this.groups[i].lrScale;
  }

  /** Applies one update to every owned parameter that has a gradient. */
  step(options: StepOptions = {}): void {
    const maxNorm = options.maxNorm ?? 0;
    if (maxNorm > 0 && !options.gradNormSq) throw new Error(`[${this.type}] maxNorm needs gradNormSq (see gradNormSq())`);
    this.stepCount++;
    noGrad(() => {
      this.groups.forEach((group, gi) => {
        for (const p of group.params) {
          if (!p.grad) continue;
          let s = this.#state.get(p);
          if (!s) {
            s = keep(this.initState(p));
            this.#state.set(p, s);
          }
          this.update(p, p.grad, s, { lr: this.groupLr(gi), weightDecay: group.weightDecay, gradNormSq: options.gradNormSq, maxNorm });
        }
      });
    });
  }

  /** Drops every owned parameter's gradient (set_to_none, as PyTorch's default). */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** The buffers of p, or undefined before p's first update. */
  stateOf(p: Tensor): ParamState | undefined {
    return this.#state.get(p);
  }

  stateDict(): OptimizerStateDict {
    return {
      type: this.type,
      step: this.stepCount,
      lr: this.lr,
      groups: this.groups.map((g) => ({ weightDecay: g.weightDecay, lrScale: g.lrScale })),
      state: new Map(this.#state),
      hyper: this.hyper(),
    };
  }

  /**
   * Restores a state dict: numbers, and the buffers of every parameter it names (copied into this
   * optimizer's own tensors; a parameter absent from it starts with no state, as before its first step).
   */
  loadStateDict(sd: OptimizerStateDict): void {
    if (sd.type !== this.type) throw new Error(`[optim] state dict is for "${sd.type}", not "${this.type}"`);
    if (sd.groups.length !== this.groups.length) throw new Error(`[optim] state dict has ${sd.groups.length} param groups, the optimizer ${this.groups.length}`);
    this.stepCount = sd.step;
    this.lr = sd.lr;
    sd.groups.forEach((g, i) => Object.assign(this.groups[i], { weightDecay: g.weightDecay, lrScale: g.lrScale }));
    this.clearState();
    for (const [p, buffers] of sd.state) {
      if (!this.owns(p)) throw new Error(`[optim] state dict has state for a parameter this optimizer does not own (${p.name ?? p.describe()})`);
      const s: ParamState = {};
      for (const k of this.stateKeys) {
        const src = buffers[k];
        if (!src) throw new Error(`[optim] state of ${p.name ?? p.describe()} lacks "${k}"`);
        if (src.size !== p.size) throw new Error(`[optim] state "${k}" of ${p.name ?? p.describe()} has ${src.size} elements, expected ${p.size}`);
        s[k] = keep(zeros(p.shape, { backend: p.backend }));
        assign(s[k], src);
      }
      this.#state.set(p, s);
    }
  }

  /** Frees every state buffer (the parameters are the model's). */
  dispose(): void {
    this.clearState();
  }

  /** The names of the buffers initState makes (for checkpoints). */
  abstract readonly stateKeys: readonly string[];

  /** New state for p before its first update (zeros, usually; may be empty and filled by update). */
  protected abstract initState(p: Tensor): ParamState;

  /** Updates p in place from grad; runs under noGrad. */
  protected abstract update(p: Tensor, grad: Tensor, state: ParamState, ctx: UpdateContext): void;

  /** Optimizer-specific hyperparameters for the state dict. */
  protected abstract hyper(): Record<string, number | boolean>;

  private clearState(): void {
    for (const s of this.#state.values()) for (const t of Object.values(s)) t.dispose();
    this.#state.clear();
  }
}

export interface UpdateContext {
  lr: number;
  weightDecay: number;
  gradNormSq?: Tensor;
  maxNorm: number;
}

/** Writes src's elements into dst's buffer (same size), for updates built from ops. */
export function assign(dst: Tensor, src: Tensor): void {
  copyKernel(src, dst, [dst.size], [1], 0);
}

/**
 * min(1, maxNorm / (sqrt(normSq) + 1e-6)) as a [1] device tensor (clip_grad_norm_'s coefficient),
 * without a read-back: 1 / (1 + relu(norm + 1e-6 - maxNorm) / maxNorm).
 */
export function clipCoefficient(gradNormSq: Tensor, maxNorm: number): Tensor {
  const excess = ops.relu(ops.affine(ops.sqrt(gradNormSq), 1, 1e-6 - maxNorm)); // max(norm + 1e-6 - maxNorm, 0)
  return ops.pow(ops.affine(excess, 1 / maxNorm, 1), -1);
}
