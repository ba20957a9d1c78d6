// The models module: model classes, the family registry (config family -> how to build, load and
// save it: ./registry.ts), configs, loading (./pretrained.ts) and saving (./save.ts) folders.

import { GPT } from "./gpt.ts";
import { LlamaForCausalLM } from "./llama.ts";
import { MistralForCausalLM } from "./mistral.ts";
import { Qwen2ForCausalLM } from "./qwen2.ts";
import type { FamilyName } from "./registry.ts";

export { GPT, GPTConfig } from "./gpt.ts";
export { LlamaForCausalLM } from "./llama.ts";
export { MistralForCausalLM } from "./mistral.ts";
export { Qwen2ForCausalLM } from "./qwen2.ts";
export { KVCache, type KVCacheOptions } from "./kv_cache.ts";
export { BatchedKVCache, type AnyKVCache } from "./batched_kv_cache.ts";
export { KVPool, type KVPoolOptions } from "./kv_pool.ts";
export { SUPPORTED_ARCHITECTURES, loadModelConfig, parseModelConfig, toHFConfig, type GPT2Config, type LlamaConfig, type ModelConfig } from "./config.ts";
export { loadPretrained, loadWeights, savePretrained, type GenerationConfig, type LoadOptions, type Pretrained, type SaveOptions } from "./pretrained.ts";
export { FAMILIES, createModel, familyByArchitecture, familyByName, type FamilyName, type PretrainedModel } from "./registry.ts";
export type { FamilyConfig, GGUFNames, ModelFamily } from "./family.ts";

/** The class for each family. */
export const MODEL_CLASSES = {
  gpt2: GPT,
  llama: LlamaForCausalLM,
  mistral: MistralForCausalLM,
  qwen2: Qwen2ForCausalLM,
} as const satisfies Record<FamilyName, unknown>;
