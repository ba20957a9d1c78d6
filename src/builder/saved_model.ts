// saveModel / loadSavedModel: a Hugging Face folder whose model.safetensors `__metadata__` also
// carries the builder config and the training metrics, and a loader that checks the three agree:
// config ↔ weights (the folder's config.json and tensor shapes, checked by loadPretrained) ↔
// tokenizer vocabulary. Named so as not to clash with the fine-tuning facade's backend.loadModel.
// Also generateText, the one-call generation of the replaced tool.

import { join } from "node:path";
import type { Backend } from "../backend/backend.ts";
import { loadTokenizer, type Tokenizer } from "../data/tokenizer.ts";
import { readSafetensors } from "../io/safetensors.ts";
import { generate, type GenerateOptions, type GenerateResult } from "../models/generate.ts";
import { loadPretrained } from "../models/pretrained.ts";
import type { ModelConfig, PretrainedModel } from "../models/registry.ts";
import { savePretrained, type FamilyModel } from "../models/save.ts";
import { UserError } from "../util/errors.ts";
import type { BuilderConfig } from "./config.ts";

export interface SaveModelOptions {
  metadata?: {
    /** the builder config (or any JSON object) the model was trained with */
    config?: BuilderConfig | Record<string, unknown>;
    /** final metrics (loss, perplexity, steps, ...) */
    metrics?: Record<string, unknown>;
    /** other string entries */
    [key: string]: unknown;
  };
  /** copy the tokenizer files from this folder */
  tokenizerDir?: string;
}

/** Writes `model` as an HF folder with config + metrics in model.safetensors' `__metadata__` (JSON strings under kiln.*). */
export async function saveModel(model: PretrainedModel, dir: string, options: SaveModelOptions = {}): Promise<void> {
  const meta: Record<string, string> = {};
  for (const [k, v] of Object.entries(options.metadata ?? {})) {
    if (v === undefined) continue;
    const value = v && typeof v === "object" && "toJSON" in v ? (v as { toJSON(): unknown }).toJSON() : v;
    meta[`kiln.${k}`] = typeof value === "string" ? value : JSON.stringify(value);
  }
  meta["kiln.vocab_size"] = String(model.config.vocabSize);
  await savePretrained(model as unknown as FamilyModel, dir, { tokenizerDir: options.tokenizerDir, metadata: meta });
}

export interface SavedModel {
  model: PretrainedModel;
  config: ModelConfig;
  tokenizer?: Tokenizer;
  /** the builder config saved with it, if any */
  trainingConfig?: Record<string, unknown>;
  metrics?: Record<string, unknown>;
  /** every kiln.* metadata entry, parsed where JSON */
  metadata: Record<string, unknown>;
}

/**
 * Loads a folder written by saveModel (or any HF folder), checking that the saved builder config's
 * model section matches the weights' config and that the tokenizer fits the vocabulary.
 */
export async function loadSavedModel(dir: string, options: { tokenizerDir?: string; backend?: Backend } = {}): Promise<SavedModel> {
  const loaded = await loadPretrained(dir, { backend: options.backend });
  const file = await readSafetensors(join(dir, "model.safetensors"));
  const metadata: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(file.metadata)) {
    if (!k.startsWith("kiln.")) continue;
    try {
      metadata[k.slice(5)] = JSON.parse(v);
    } catch {
      metadata[k.slice(5)] = v;
    }
  }
  const config = loaded.config as ModelConfig & { nLayer: number; nEmbd: number; nHead: number };
  const fail = (what: string) => {
    loaded.model.dispose();
    throw new UserError(`${dir}: ${what}`);
  };
  const saved = (metadata.config as { model?: Record<string, unknown> } | undefined)?.model;
  if (saved) {
    const checks: [string, unknown, unknown][] = [
      ["vocabSize", saved.vocabSize, config.vocabSize], ["numLayers", saved.numLayers, config.nLayer],
      ["numHeads", saved.numHeads, config.nHead], ["embeddingDim", saved.embeddingDim, config.nEmbd], ["maxSeqLength", saved.maxSeqLength, config.blockSize],
    ];
    for (const [field, want, got] of checks) {
      if (want !== undefined && want !== got) fail(`the saved training config says model.${field} ${want}, the weights have ${got}`);
    }
  }
  if (metadata.vocab_size !== undefined && Number(metadata.vocab_size) !== config.vocabSize) fail(`saved with vocab_size ${metadata.vocab_size}, the weights have ${config.vocabSize}`);
  let tokenizer = loaded.tokenizer;
  if (options.tokenizerDir) tokenizer = await loadTokenizer(options.tokenizerDir);
  if (tokenizer && tokenizer.vocabSize > config.vocabSize) fail(`the tokenizer has ${tokenizer.vocabSize} tokens, the model's vocabulary ${config.vocabSize}`);
  return { model: loaded.model, config: loaded.config, tokenizer, trainingConfig: metadata.config as Record<string, unknown> | undefined, metrics: metadata.metrics as Record<string, unknown> | undefined, metadata };
}

export interface GenerateTextRequest {
  modelPath: string;
  /** default: the model folder's tokenizer */
  tokenizerPath?: string;
  prompt: string;
  maxNewTokens?: number;
  options?: Omit<GenerateOptions, "maxNewTokens">;
}

/** Loads the model (and tokenizer), continues `prompt`, frees the model. */
export async function generateText(req: GenerateTextRequest): Promise<GenerateResult> {
  const { model, tokenizer } = await loadSavedModel(req.modelPath, { tokenizerDir: req.tokenizerPath });
  try {
    if (!tokenizer) throw new UserError(`${req.modelPath} has no tokenizer: pass tokenizerPath`);
    return await generate(model, tokenizer, req.prompt, { ...req.options, maxNewTokens: req.maxNewTokens ?? req.options?.["maxNewTokens" as never] });
  } finally {
    model.dispose();
  }
}
