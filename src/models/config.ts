// Hugging Face config.json -> kiln model configs, through the family registry: config.json names an
// architecture (or a model_type), that family's parser normalises it (GPT2LMHeadModel to GPT's
// fields; LlamaForCausalLM, MistralForCausalLM and Qwen2ForCausalLM to LlamaConfig). Fields that
// change the math in a way kiln does not implement (rope_scaling, quantization, other
// activations...) throw naming them. Not a model and no weights.
// Reference: transformers models/{gpt2,llama,mistral,qwen2}/configuration_*.py.

import { FAMILIES, familyByArchitecture, familyByName, type FamilyName, type ModelConfig } from "./registry.ts";

export { GPT2Config } from "./gpt.ts";
export { LlamaConfig } from "./llama.ts";
export type { FamilyName, ModelConfig };

/** The architectures kiln can build, by HF class name -> kiln family. */
export const SUPPORTED_ARCHITECTURES: Readonly<Record<string, FamilyName>> = Object.fromEntries(
  FAMILIES.map((f) => [f.architecture, f.name as FamilyName]),
);

/** Fields that change the computation in ways kiln does not implement: any value but the allowed throws. */
const MUST_BE_ABSENT = ["quantization_config", "auto_map", "rope_local_base_freq"];

/**
 * Parse a Hugging Face config.json object into kiln's config for its architecture.
 * Throws `[config] ...` naming the architecture or field (and value) it cannot handle.
 * @example parseModelConfig(await Bun.file("gpt2/config.json").json()) // {family: "gpt2", nLayer: 12, ...}
 */
export function parseModelConfig(json: unknown): ModelConfig {
  if (json === null || typeof json !== "object" || Array.isArray(json)) throw new Error(`[config] config.json must be a JSON object`);
  const raw = json as Record<string, unknown>;
  const family = familyOf(raw);
  for (const k of MUST_BE_ABSENT) {
    if (raw[k] != null) {
      const v = raw[k] as Record<string, unknown>;
      const detail = k === "quantization_config" ? ` (quant_method ${JSON.stringify(v?.quant_method)})` : "";
      throw new Error(`[config] field ${k}${detail} is not supported: kiln loads unquantized weights with built-in code only`);
    }
  }
  return familyByName(family).parseConfig(raw);
}

/** Read and parse `<dir>/config.json`. */
export async function loadModelConfig(dir: string): Promise<ModelConfig> {
  const path = `${dir.replace(/\/$/, "")}/config.json`;
  const f = Bun.file(path);
  if (!(await f.exists())) throw new Error(`[config] ${path} not found`);
  let raw: unknown;
  try {
    raw = JSON.parse(await f.text());
  } catch (e) {
    throw new Error(`[config] ${path} is not valid JSON (${(e as Error).message})`);
  }
  try {
    return parseModelConfig(raw);
  } catch (e) {
    throw new Error(`[config] ${path}: ${(e as Error).message.replace(/^\[config\] /, "")}`, { cause: e });
  }
}

function familyOf(raw: Record<string, unknown>): FamilyName {
  const archs = raw.architectures;
  const modelType = raw.model_type;
  const supported = Object.keys(SUPPORTED_ARCHITECTURES).join(", ");
  if (Array.isArray(archs) && archs.length > 0) {
    if (archs.length > 1) throw new Error(`[config] several architectures ${JSON.stringify(archs)}; kiln expects one`);
    const a = archs[0] as string;
    const fam = familyByArchitecture(a)?.name as FamilyName | undefined;
    if (!fam) throw new Error(`[config] architecture ${JSON.stringify(a)} (model_type ${JSON.stringify(modelType)}) is not supported; supported: ${supported}`);
    if (modelType != null && modelType !== fam)
      throw new Error(`[config] architecture ${a} does not match model_type ${JSON.stringify(modelType)} (expected "${fam}")`);
    return fam;
  }
  const fam = FAMILIES.find((f) => f.name === modelType)?.name as FamilyName | undefined;
  if (!fam) throw new Error(`[config] model_type ${JSON.stringify(modelType)} is not supported (no architectures given); supported: ${supported}`);
  return fam;
}

/**
 * The inverse of parseModelConfig: a Hugging Face config.json object (HF field names, architectures,
 * model_type, torch_dtype "float32": kiln saves f32 weights) that parses back to the same config and
 * that transformers reads as the same model. Throws for a kiln config HF cannot express.
 */
export function toHFConfig(config: ModelConfig): Record<string, unknown> {
  return familyByName(config.family).toHFConfig(config);
}
