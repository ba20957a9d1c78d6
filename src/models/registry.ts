// The model families kiln can load and save, by name (HF model_type) and by HF architecture. The
// loader (./pretrained.ts) and config.json parsing (./config.ts) look families up here; nothing
// else lists them. Adding a family = its file (model class + ModelFamily, ./family.ts) and one
// line in FAMILIES.
// Reference: mlx-lm utils._get_classes (model_type -> module).

import type { Backend } from "../backend/backend.ts";
import type { ModelFamily } from "./family.ts";
import { gpt2 } from "./gpt.ts";
import { llama } from "./llama.ts";
import { mistral } from "./mistral.ts";
import { qwen2 } from "./qwen2.ts";

export const FAMILIES = [gpt2, llama, mistral, qwen2] as const;

type Family = (typeof FAMILIES)[number];
/** The config of any registered family (its `family` field names it). */
export type ModelConfig = ReturnType<Family["parseConfig"]>;
/** A model of any registered family: forward(ids, { cache }), newCache, config.{vocabSize, blockSize}. */
export type PretrainedModel = ReturnType<Family["create"]>;
/** A family's name (HF model_type). */
export type FamilyName = ModelConfig["family"];

/** The family called `name` (HF model_type); throws naming the supported ones. */
export function familyByName(name: string): ModelFamily<ModelConfig, PretrainedModel> {
  const f = FAMILIES.find((f) => f.name === name);
  if (!f) throw new Error(`[config] model_type ${JSON.stringify(name)} is not supported; supported: ${FAMILIES.map((f) => f.name).join(", ")}`);
  return f as ModelFamily<ModelConfig, PretrainedModel>;
}

/** The family whose HF class is `architecture` (config.json architectures[0]), or undefined. */
export function familyByArchitecture(architecture: string): ModelFamily<ModelConfig, PretrainedModel> | undefined {
  return FAMILIES.find((f) => f.architecture === architecture) as ModelFamily<ModelConfig, PretrainedModel> | undefined;
}

/** A freshly initialised model of config's family (built without init under withoutInit). */
export function createModel(config: ModelConfig, backend?: Backend): PretrainedModel {
  return familyByName(config.family).create(config, backend);
}
