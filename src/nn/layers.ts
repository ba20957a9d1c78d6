// The basic layers: Linear, Embedding, LayerNorm, RMSNorm, Dropout. Weights are created on the
// default backend with the init PyTorch/nanoGPT use unless an init std is given.

import { Module } from "./module.ts";
import { isTraining } from "../tensor/mode.ts";
import { ones, randn, zeros, type Tensor } from "../tensor/tensor.ts";
import * as ops from "../ops/index.ts";
import type { Backend } from "../backend/backend.ts";

export interface InitOptions {
  backend?: Backend;
  /** std of the normal init of the weight (default 0.02, GPT-2's) */
  std?: number;
}

/**
 * y = x·Wᵀ + b. `layout: "in_out"` stores W as [in, out] (Hugging Face Conv1D, GPT-2's checkpoints);
 * the default "out_in" is torch.nn.Linear's [out, in].
 */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    readonly options: InitOptions & { bias?: boolean; layout?: "out_in" | "in_out" } = {},
  ) {
    super();
    const shape = options.layout === "in_out" ? [inFeatures, outFeatures] : [outFeatures, inFeatures];
    this.weight = this.param("weight", randn(shape, { std: options.std ?? 0.02, backend: options.backend }));
    this.bias = options.bias === false ? null : this.param("bias", zeros([outFeatures], { backend: options.backend }));
  }
  forward(x: Tensor): Tensor {
    return ops.linear(x, this.weight, this.bias, this.options.layout ?? "out_in");
  }
}

/** A [V, C] lookup table. */
export class Embedding extends Module {
  readonly weight: Tensor;
  constructor(readonly numEmbeddings: number, readonly dim: number, options: InitOptions = {}) {
    super();
    this.weight = this.param("weight", randn([numEmbeddings, dim], { std: options.std ?? 0.02, backend: options.backend }));
  }
  forward(ids: Tensor): Tensor {
    return ops.embedding(ids, this.weight);
  }
}

export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(readonly dim: number, readonly eps = 1e-5, options: InitOptions = {}) {
    super();
    this.weight = this.param("weight", ones([dim], { backend: options.backend }));
    this.bias = this.param("bias", zeros([dim], { backend: options.backend }));
  }
  forward(x: Tensor): Tensor {
    return ops.layerNorm(x, this.weight, this.bias, this.eps);
  }
}

export class RMSNorm extends Module {
  readonly weight: Tensor;
  constructor(readonly dim: number, readonly eps = 1e-6, options: InitOptions = {}) {
    super();
    this.weight = this.param("weight", ones([dim], { backend: options.backend }));
  }
  forward(x: Tensor): Tensor {
    return ops.rmsNorm(x, this.weight, this.eps);
  }
}

/** Inverted dropout, active only in training mode (the module's flag, or withTraining's per call). */
export class Dropout extends Module {
  constructor(readonly p: number) {
    super();
  }
  forward(x: Tensor): Tensor {
    return ops.dropout(x, this.p, isTraining(this));
  }
}
