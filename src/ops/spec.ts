// The differentiable ops: each key names one front-end op (src/ops/*) and the context its
// gradient rule (src/autograd/rules.ts) needs. A new op does not compile until rules.ts decides
// its gradient (a VJP rule, or NonDiff).

import type { KernelParams } from "../backend/kernels.ts";
import type { DType } from "../tensor/dtype.ts";
import type { Tensor } from "../tensor/tensor.ts";

export interface OpSpecs {
  add: { aShape: readonly number[]; bShape: readonly number[] };
  sub: { aShape: readonly number[]; bShape: readonly number[] };
  mul: { a: Tensor; b: Tensor };
  div: { a: Tensor; b: Tensor };
  affine: { alpha: number };
  pow: { x: Tensor; p: number };
  exp: { out: Tensor };
  log: { x: Tensor };
  sqrt: { out: Tensor };
  tanh: { out: Tensor };
  sigmoid: { out: Tensor };
  relu: { x: Tensor };
  gelu: { dgelu: Tensor };
  silu: { x: Tensor };
  dropout: { p: number; seed: number };
  sum: { inShape: readonly number[]; axes: readonly number[] };
  max: {};
  reshape: { inShape: readonly number[] };
  permute: { dims: readonly number[] };
  expand: { inShape: readonly number[] };
  narrow: { inShape: readonly number[]; axis: number; start: number };
  cat: { axis: number; sizes: readonly number[] };
  matmul: { a: Tensor; b: Tensor; autocast: boolean };
  linear: { x: Tensor; w: Tensor; hasBias: boolean; wLayout: "out_in" | "in_out"; autocast: boolean };
  softmax: { out: Tensor };
  embedding: { ids: Tensor; V: number };
  layer_norm: { x: Tensor; weight: Tensor; mean: Tensor; rstd: Tensor };
  rms_norm: { x: Tensor; weight: Tensor; rstd: Tensor };
  rope: { theta: number; offset: number };
  attention: { q: Tensor; k: Tensor; v: Tensor; out: Tensor; lse: Tensor; scale: number; causal: boolean };
  qkv_attention: { qkv: Tensor; out: Tensor; lse: Tensor; params: KernelParams<"attention"> };
  cast: { from: DType };
  cross_entropy: { logits: Tensor; targets: Tensor; lse: Tensor; ignoreIndex: number };
  /**
   * An op that brings its own backward (src/autograd/function.ts): the chunked LM-head loss,
   * checkpointed blocks. `name` is for messages; backward returns one gradient per input.
   */
  custom: { name: string; backward: CustomBackward };
}

/** g: the output's gradient; needs[j]: whether input j takes one. Runs under noGrad, in a scope. */
export type CustomBackward = (g: Tensor, needs: readonly boolean[]) => (Tensor | null)[];

export type OpName = keyof OpSpecs;
