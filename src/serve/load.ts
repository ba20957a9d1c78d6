// A Hugging Face model folder as a served model entry: weights (loadPretrained), tokenizer, chat
// template (chat_template.jinja or tokenizer_config.json) and generation_config.json defaults.
// The one way `kiln serve` and embedding apps load what createServer() serves.

import { basename, resolve } from "node:path";
import type { Backend } from "../backend/backend.ts";
import { loadPretrained } from "../models/pretrained.ts";
import { loadChatTemplate } from "../data/chat_template.ts";
import type { ModelEntry } from "./server.ts";
import type { PretrainedModel } from "../models/index.ts";

/** A served model entry that holds a loaded model (dispose it when done). */
export type LoadedModelEntry = ModelEntry & { model: PretrainedModel };

/**
 * Loads `dir` for serving under `name` (default: the folder's name).
 * @example createServer({ models: [await loadServedModel("models/tiny")] })
 */
export async function loadServedModel(dir: string, { name, backend }: { name?: string; backend?: Backend } = {}): Promise<LoadedModelEntry> {
  const { model, tokenizer, generationConfig } = await loadPretrained(dir, { backend });
  if (!tokenizer) {
    model.dispose();
    throw new Error(`[serve] ${dir} has no tokenizer (tokenizer.json, or vocab.json + merges.txt): a server needs one`);
  }
  const chatTemplate = await loadChatTemplate(dir);
  return { name: name ?? basename(resolve(dir)), model, tokenizer, chatTemplate, generationConfig: generationConfig as ModelEntry["generationConfig"] };
}
