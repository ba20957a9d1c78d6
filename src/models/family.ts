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

/** llama.cpp names for GGUF export: its architecture string and each tensor's name. */
export interface GGUFNames<C extends FamilyConfig = FamilyConfig> {
  /** general.architecture, e.g. "gpt2", "llama", "qwen2" */
  readonly architecture: string;
  /** the GGUF tensor name of kiln parameter `name` ("token_embd.weight", "blk.0.attn_q.weight", ...), or null to leave it out */
  tensorName(name: string, config: C): string | null;
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
  /** GGUF names, where export to GGUF is supported */
  readonly gguf?: GGUFNames<C>;
}
