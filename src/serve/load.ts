// A Hugging Face model folder as a served model entry: weights (loadPretrained), tokenizer, chat
// template (chat_template.jinja or tokenizer_config.json) and generation_config.json defaults, or a
// llama.cpp GGUF file (loadGguf: weights dequantized to f32, tokenizer and chat template from its
// tokenizer.ggml.* metadata); and
// a PEFT LoRA adapter on it (vLLM's --lora-modules), merged into its own copy of the base weights.
// The one way `kiln serve` and embedding apps load what createServer() serves.

import { basename, resolve } from "node:path";
import type { Backend } from "../backend/backend.ts";
import { loadPretrained } from "../models/pretrained.ts";
import { ChatTemplate, loadChatTemplate } from "../data/chat_template.ts";
import { loadGguf } from "../io/gguf_load.ts";
import { loadAdapter } from "../io/peft.ts";
import { mergeAndUnload } from "../nn/lora_model.ts";
import type { ModelEntry } from "./server.ts";
import type { PretrainedModel } from "../models/index.ts";

/** A served model entry that holds a loaded model (dispose it when done). */
export type LoadedModelEntry = ModelEntry & { model: PretrainedModel };

/**
 * Loads `dir` (a model folder, or a `.gguf` file) for serving under `name` (default: the folder's
 * name, or the file's name without `.gguf`).
 * @example createServer({ models: [await loadServedModel("models/tiny")] })
 */
export async function loadServedModel(dir: string, { name, backend }: { name?: string; backend?: Backend } = {}): Promise<LoadedModelEntry> {
  if (dir.toLowerCase().endsWith(".gguf")) return loadServedGguf(dir, { name, backend });
  const { model, tokenizer, generationConfig } = await loadPretrained(dir, { backend });
  if (!tokenizer) {
    model.dispose();
    throw new Error(`[serve] ${dir} has no tokenizer (tokenizer.json, or vocab.json + merges.txt): a server needs one`);
  }
  const chatTemplate = await loadChatTemplate(dir);
  return { name: name ?? basename(resolve(dir)), model, tokenizer, chatTemplate, generationConfig: generationConfig as ModelEntry["generationConfig"] };
}

/**
 * The base model in `baseDir` with the PEFT adapter in `adapterDir` merged in, served as `name`.
 * Merged (PEFT merge_and_unload, checked on a probe batch) so that it decodes through the same
 * batched path as any model: its own copy of the weights, its own decode batch.
 * @example await loadServedAdapter("models/base", "runs/sft/adapter", "sql-lora")
 */
export async function loadServedAdapter(baseDir: string, adapterDir: string, name: string, { backend }: { backend?: Backend } = {}): Promise<LoadedModelEntry> {
  const entry = await loadServedModel(baseDir, { name, backend });
  try {
    await loadAdapter(entry.model, adapterDir);
    await mergeAndUnload(entry.model);
  } catch (e) {
    entry.model.dispose();
    throw e;
  }
  return entry;
}

async function loadServedGguf(file: string, { name, backend }: { name?: string; backend?: Backend }): Promise<LoadedModelEntry> {
  const { model, tokenizer, tokenizerFiles } = await loadGguf(file, { backend });
  if (!tokenizer) {
    model.dispose();
    throw new Error(`[serve] ${file} has no tokenizer (tokenizer.ggml.* metadata): a server needs one`);
  }
  const chatTemplate = tokenizerFiles ? ChatTemplate.fromConfig(tokenizerFiles.config) : null;
  return { name: name ?? basename(resolve(file)).replace(/\.gguf$/i, ""), model, tokenizer, chatTemplate };
}
