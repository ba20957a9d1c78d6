// The model families by name: config family (HF model_type) -> model class, and createModel(config)
// to build one from a parsed config.json. Loading and saving folders is ./pretrained.ts.
// Reference: mlx-lm utils._get_classes (model_type -> module).

import type { Backend } from "../backend/backend.ts";
import type { ModelConfig, ModelFamily } from "./config.ts";
import { GPT } from "./gpt.ts";
import { LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM } from "./llama.ts";

export { GPT, GPTConfig } from "./gpt.ts";
export { LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM } from "./llama.ts";
export { KVCache, type KVCacheOptions } from "./kv_cache.ts";
export { BatchedKVCache, type AnyKVCache } from "./batched_kv_cache.ts";
export { loadModelConfig, parseModelConfig, toHFConfig, type GPT2Config, type LlamaConfig, type ModelConfig } from "./config.ts";
export { loadPretrained, loadWeights, savePretrained, type GenerationConfig, type LoadOptions, type Pretrained, type SaveOptions } from "./pretrained.ts";

/** Any model loadPretrained builds: forward(ids, { cache }), newCache, config.{vocabSize, blockSize}. */
export type PretrainedModel = GPT | LlamaForCausalLM;

/** The class for each family. */
export const MODEL_CLASSES = {
  gpt2: GPT,
  llama: LlamaForCausalLM,
  mistral: MistralForCausalLM,
  qwen2: Qwen2ForCausalLM,
} as const satisfies Record<ModelFamily, unknown>;

/** A freshly initialised model of config's family (GPT-2 configs map onto GPTConfig). */
export function createModel(config: ModelConfig, backend?: Backend): PretrainedModel {
  if (config.family === "gpt2") return new GPT(config, backend);
  return new MODEL_CLASSES[config.family](config, backend);
}
