// What kiln knows about one model family (one Hugging Face architecture): how to read and write its
// config.json, build the model, and name its tensors in HF checkpoints (and, for export, in GGUF).
// The loader (./pretrained.ts) finds a family through ./registry.ts; a model finds its own through
// its `family` getter, so saving needs no registry. Types only: no model code here.

import type { Backend } from "../backend/backend.ts";
import type { Module } from "../nn/module.ts";

/** The fields every family's config has (kiln names). */
export interface FamilyConfig {
  /** the family's name (HF model_type) */
  readonly family: string;
  readonly vocabSize: number;
  readonly blockSize: number;
}

/**
 * How a family's model is written as a llama.cpp GGUF file (and read back): its architecture
 * string, each tensor's name, how a tensor's values are laid out differently from kiln's, and the
 * hyperparameters llama.cpp reads (`{architecture}.context_length`, ...).
 * Reference: llama.cpp convert_hf_to_gguf.py (each model class's tensor map and modify_tensors),
 * gguf-py/gguf/constants.py (tensor and key names).
 */
export interface GGUFNames<C extends FamilyConfig = FamilyConfig> {
  /** general.architecture, e.g. "gpt2", "llama", "qwen2" */
  readonly architecture: string;
  /** the GGUF tensor name of kiln parameter `name` ("token_embd.weight", "blk.0.attn_q.weight", ...), or null to leave it out */
  tensorName(name: string, config: C): string | null;
  /**
   * How parameter `name` is stored in GGUF when not as kiln holds it: "transpose" (kiln keeps the
   * HF Conv1D layout [in, out]; GGUF wants [out, in]), or "rope" with a head count (rows permuted
   * from HF's rotate-half RoPE pairs (i, i + D/2) to llama.cpp's adjacent pairs (2i, 2i + 1), as
   * the converter's LlamaModel.permute does for q and k).
   */
  layout(name: string, config: C): { kind: "transpose" } | { kind: "rope"; heads: number } | null;
  /** the hyperparameters, by GGUF key without the `{architecture}.` prefix */
  hparams(config: C): GGUFHParams;
  /** the config a GGUF file's hyperparameters (and which tensors it holds: biases, output.weight) describe */
  fromHParams(h: GGUFHParams, file: { vocabSize: number; bosTokenId: number | null; eosTokenId: number | null; hasTensor(name: string): boolean }): C;
}

/** llama.cpp's per-architecture keys (integers are u32 in the file, the rest f32). */
export interface GGUFHParams {
  context_length: number;
  embedding_length: number;
  block_count: number;
  feed_forward_length: number;
  "attention.head_count": number;
  "attention.head_count_kv"?: number;
  "attention.key_length"?: number;
  "attention.value_length"?: number;
  "attention.layer_norm_epsilon"?: number;
  "attention.layer_norm_rms_epsilon"?: number;
  "rope.freq_base"?: number;
  "rope.dimension_count"?: number;
}

export interface ModelFamily<C extends FamilyConfig = FamilyConfig, M extends Module = Module> {
  /** kiln's name for the family = HF model_type ("gpt2", "llama", "qwen2", "mistral") */
  readonly name: string;
  /** the HF class name in config.json `architectures` ("GPT2LMHeadModel", ...) */
  readonly architecture: string;
  /** HF config.json object (model_type and architectures already matched) -> kiln config; throws `[config] ...` naming the field */
  parseConfig(raw: Record<string, unknown>): C;
  /** kiln config -> HF config.json object that parses back to the same config (and that transformers reads as the same model) */
  toHFConfig(config: C): Record<string, unknown>;
  /** a model of this family (initialised, unless built under withoutInit) */
  create(config: C, backend?: Backend): M;
  /** the config `model` was built from; `loaded`: the one it was loaded with (fields the model does not keep, e.g. token ids) */
  configOf(model: M, loaded?: C): C;
  /** the tensors a transformers save_pretrained of this config writes, in kiln's parameter order */
  hfTensorNames(config: C): string[];
  /**
   * The kiln parameter an HF checkpoint tensor loads into, or null for tensors HF checkpoints carry
   * that kiln recomputes (causal-mask and RoPE buffers, a tied head). Any other name the model
   * lacks is an unexpected tensor (skipped with a warning).
   */
  fromHFName(name: string, config: C): string | null;
  /** the HF checkpoint name of kiln parameter `name` */
  toHFName(name: string, config: C): string;
  /** GGUF names and layout, where export to GGUF is supported */
  readonly gguf?: GGUFNames<C>;
}
