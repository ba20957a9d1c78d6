// savePretrained: writes a model as a Hugging Face folder (config.json, model.safetensors,
// generation_config.json, the tokenizer files) that kiln and transformers both read. The model's
// own `family` says how (HF config fields, tensor names), so this file needs no registry and the
// model classes can call it. Loading is ./pretrained.ts, which records where a model came from
// (rememberOrigin) so that saving it again carries its tokenizer and generation config along.
// Reference: transformers PreTrainedModel.save_pretrained (file names, tied weights saved once).

import { copyFile, mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Module } from "../nn/module.ts";
import { writeSafetensors, type SafetensorsTensor } from "../io/safetensors.ts";
import { writeJsonAtomic } from "../io/atomic.ts";
import type { FamilyConfig, ModelFamily } from "./family.ts";

/** generation_config.json as Hugging Face writes it (the fields generation reads; others kept as-is). */
export interface GenerationConfig {
  bos_token_id?: number | number[] | null;
  eos_token_id?: number | number[] | null;
  pad_token_id?: number | null;
  max_new_tokens?: number;
  max_length?: number;
  do_sample?: boolean;
  temperature?: number;
  top_k?: number;
  top_p?: number;
  repetition_penalty?: number;
  [field: string]: unknown;
}

export interface SaveOptions {
  /** copy the tokenizer files from this folder (default: the folder the model was loaded from, if any) */
  tokenizerDir?: string;
  /** written as generation_config.json (default: the one loaded with the model, if any) */
  generationConfig?: GenerationConfig;
  /** extra safetensors `__metadata__` entries (string values; "format" stays "pt") */
  metadata?: Readonly<Record<string, string>>;
  /**
   * The weights' dtype in the file and config.json's torch_dtype: "float32" (default), "bfloat16"
   * or "float16" (rounded to nearest even; a 16-bit base saved in its own dtype is written bit for bit).
   */
  dtype?: "float32" | "bfloat16" | "float16";
}

const FILE_DTYPE = { float32: "F32", bfloat16: "BF16", float16: "F16" } as const;

/** A model that knows its family (every model class of src/models). */
export interface FamilyModel extends Module {
  readonly family: ModelFamily;
}

/** The files a tokenizer may span, copied along with the model. */
export const TOKENIZER_FILES = [
  "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
  "vocab.json", "merges.txt", "tokenizer.model", "chat_template.jinja", "chat_template.json",
];

interface Origin { dir: string; config: FamilyConfig; generationConfig?: GenerationConfig }
const origins = new WeakMap<Module, Origin>();

/** Records the folder, config and generation config a model was loaded from (savePretrained's defaults). */
export function rememberOrigin(model: Module, origin: Origin): void {
  origins.set(model, origin);
}

/**
 * Writes `model` as a Hugging Face folder: config.json (HF field names, torch_dtype as `dtype`),
 * model.safetensors (F32 unless `dtype` says otherwise, HF names; a tied head saved once, under the embedding's name, as
 * transformers does), generation_config.json and the tokenizer files when known.
 */
export async function savePretrained(model: FamilyModel, dir: string, options: SaveOptions = {}): Promise<void> {
  const family = model.family;
  const origin = origins.get(model);
  const config = family.configOf(model, origin?.config.family === family.name ? origin.config : undefined);
  const dtype = options.dtype ?? "float32";
  if (!(dtype in FILE_DTYPE)) throw new Error(`[save] dtype ${JSON.stringify(dtype)} is not one of ${Object.keys(FILE_DTYPE).join(", ")}`);
  const hfConfig = { ...family.toHFConfig(config), torch_dtype: dtype }; // throws before anything is written if HF cannot express it
  await mkdir(dir, { recursive: true });
  const tensors: Record<string, SafetensorsTensor> = {};
  for (const [name, t] of model.namedParameters()) {
    // read back from the device one tensor at a time, as the file is written: one copy of the weights
    tensors[family.toHFName(name, config)] = { dtype: FILE_DTYPE[dtype], shape: t.shape, data: () => t.data() as Promise<Float32Array> };
  }
  await writeSafetensors(join(dir, "model.safetensors"), tensors, { ...options.metadata, format: "pt" });
  await writeJsonAtomic(join(dir, "config.json"), hfConfig);
  const generationConfig = options.generationConfig ?? origin?.generationConfig;
  if (generationConfig) await writeJsonAtomic(join(dir, "generation_config.json"), generationConfig);
  const tokenizerDir = options.tokenizerDir ?? origin?.dir;
  if (tokenizerDir && resolve(tokenizerDir) !== resolve(dir)) {
    for (const file of TOKENIZER_FILES) {
      if (await Bun.file(join(tokenizerDir, file)).exists()) await copyFile(join(tokenizerDir, file), join(dir, file));
    }
  }
}
