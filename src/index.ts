// kiln's public API: re-exports only.
export { createBackend, backends, BackendRegistry, type BackendChoice } from "./backend/registry.ts";
export type { Backend, BackendName, BackendOptions, DeviceBuffer, MemoryStats } from "./backend/backend.ts";
export { KERNELS, KERNEL_NAMES, type KernelName } from "./backend/kernels.ts";
export { init } from "./init.ts";
export {
  Tensor, tensor, fromArray, zeros, ones, full, randn, rand, arange, empty, useBackend, defaultBackend,
  type TensorOptions,
} from "./tensor/tensor.ts";
export type { DType } from "./tensor/dtype.ts";
export { scope, asyncScope, keep, dispose } from "./tensor/memory.ts";
export { Rng, seed } from "./tensor/random.ts";
export { noGrad, isGradEnabled } from "./autograd/tape.ts";
export { checkGradients } from "./autograd/check.ts";
export * as ops from "./ops/index.ts";
export {
  add, sub, mul, div, neg, pow, exp, log, sqrt, tanh, sigmoid, relu, gelu, silu, dropout,
  sum, mean, max, reshape, permute, transpose, expand, narrow, split, cat,
  matmul, linear, softmax, layerNorm, rmsNorm, attention, rope, embedding, crossEntropy,
} from "./ops/index.ts";
export { Module, ModuleList } from "./nn/module.ts";
export { Linear, Embedding, LayerNorm, RMSNorm, Dropout } from "./nn/layers.ts";
export { AdamW, type ParamGroup, type AdamWOptions } from "./optim/adamw.ts";
export { gradNormSq, clipGradNorm } from "./optim/clip.ts";
export { warmupCosine } from "./optim/schedule.ts";
export { GPT, GPTConfig } from "./models/gpt.ts";
