// The builder's config: three structured sections (model, training, system) as zod schemas, loaded
// from JSON/YAML or a preset, validated (errors name the field and the value), repaired where safe
// (fixConfig) and saved. Keys are camelCase in the API; files may use the snake_case names users
// bring from nanoGPT/HF (vocab_size, num_layers, learning_rate), mapped by the engine's one
// normaliser (src/train/config_keys.ts). Flat nanoGPT configs are migrated by ./legacy.ts.

import { z } from "zod";
import { writeFileAtomic } from "../io/atomic.ts";
import { ConfigError } from "../train/config.ts";
import { normalizeConfigKeys } from "../train/config_keys.ts";
import { readConfigFile, sectionsToYaml } from "./config_file.ts";
import { isLegacyConfig, migrateLegacyObject } from "./legacy.ts";
import { PRESETS, type PresetName } from "./presets.ts";

const posInt = z.number().int().positive();

export const ModelSection = z.strictObject({
  vocabSize: posInt.default(50257),
  numLayers: posInt.default(6),
  numHeads: posInt.default(6),
  embeddingDim: posInt.default(384),
  maxSeqLength: posInt.default(256),
  dropout: z.number().min(0).lt(1).default(0.1),
  /** biases in linear layers and norms (GPT-2 has them; Llama has none) */
  bias: z.boolean().optional(),
  modelType: z.enum(["gpt", "llama"]).default("gpt"),
  /** Llama MLP hidden size (default: SwiGLU's 8/3 · embeddingDim rounded up to a multiple of 64) */
  intermediateSize: posInt.optional(),
});

export const TrainingSection = z.strictObject({
  batchSize: posInt.default(16),
  learningRate: z.number().positive().default(3e-4),
  epochs: posInt.default(1),
  maxSteps: posInt.optional(),
  warmupSteps: z.number().int().nonnegative().default(0),
  weightDecay: z.number().nonnegative().default(0.01),
  maxGradNorm: z.number().nonnegative().default(1.0),
  /** checkpoint every this many epochs (0: only at the end) */
  saveEvery: z.number().int().nonnegative().default(1),
  /** validation every this many steps (0: once per epoch) */
  evalEvery: z.number().int().nonnegative().default(0),
  /** batches per validation */
  evalIters: posInt.optional(),
  /** a metrics line every this many steps */
  logEvery: posInt.default(10),
  /** write an export bundle (kiln export bundle) next to the trained model */
  exportBundle: z.boolean().default(false),
});

export const SystemSection = z.strictObject({
  /** "auto" picks WebGPU when an adapter exists, else wasm; "cpu" = wasm; "gpu"/"cuda"/"mps" = webgpu */
  device: z.enum(["auto", "cpu", "wasm", "gpu", "webgpu", "cuda", "mps"]).default("auto"),
  randomSeed: z.number().int().default(1337),
  deterministic: z.boolean().default(true),
});

export const BuilderConfigSchema = z.strictObject({
  model: ModelSection.default(ModelSection.parse({})),
  training: TrainingSection.default(TrainingSection.parse({})),
  system: SystemSection.default(SystemSection.parse({})),
});
export type ModelSectionValues = z.infer<typeof ModelSection>;
export type TrainingSectionValues = z.infer<typeof TrainingSection>;
export type SystemSectionValues = z.infer<typeof SystemSection>;
export type BuilderConfigInput = z.input<typeof BuilderConfigSchema>;

/** One problem with a config: the field (dotted path), the value and what is wrong. */
export interface ConfigProblem {
  field: string;
  value: unknown;
  message: string;
}

export { readConfigFile };

/** A parsed, defaulted builder config. `save(file)` writes it as JSON or YAML (by extension). */
export class BuilderConfig {
  model: ModelSectionValues;
  training: TrainingSectionValues;
  system: SystemSectionValues;
  /** where it came from ("config.json", "preset cpu_small", "object") */
  readonly source: string;
  constructor(values: z.infer<typeof BuilderConfigSchema>, source = "object") {
    this.model = values.model;
    this.training = values.training;
    this.system = values.system;
    this.source = source;
  }
  /** The plain sections (what save writes). */
  toJSON(): { model: ModelSectionValues; training: TrainingSectionValues; system: SystemSectionValues } {
    return { model: { ...this.model }, training: { ...this.training }, system: { ...this.system } };
  }
  async save(file: string): Promise<void> {
    const text = /\.ya?ml$/i.test(file) ? sectionsToYaml(this.toJSON()) : JSON.stringify(this.toJSON(), null, 2) + "\n";
    await writeFileAtomic(file, text);
  }
}

export interface LoadConfigOptions {
  /** where migration notices go (default console.warn) */
  notice?: (line: string) => void;
}

/**
 * A config from a JSON/YAML file, a preset ({ preset: "cpu_small" }, with optional section
 * overrides), or a plain object. Flat nanoGPT configs are migrated with a notice listing what moved.
 * Throws a ConfigError naming each bad field and its value.
 */
export async function loadConfig(source: string | ({ preset?: PresetName } & Record<string, unknown>), options: LoadConfigOptions = {}): Promise<BuilderConfig> {
  if (typeof source === "string") return parseConfig(await readConfigFile(source), source, options);
  const { preset, ...rest } = source;
  if (preset === undefined) return parseConfig(rest, "object", options);
  const base = PRESETS[preset];
  if (!base) throw new ConfigError(`unknown preset ${JSON.stringify(preset)}; presets: ${Object.keys(PRESETS).join(", ")}`);
  const merged: Record<string, unknown> = { ...base.config };
  const normal = normalizeConfigKeys(rest, { source: "file", what: `preset ${preset}` });
  for (const [k, v] of Object.entries(normal)) {
    merged[k] = isPlain(v) && isPlain(merged[k]) ? { ...(merged[k] as object), ...v } : v;
  }
  return parseConfig(merged, `preset ${preset}`, options);
}

/** Parses an object (sections or a flat nanoGPT config) into a BuilderConfig. */
export function parseConfig(raw: Record<string, unknown>, what = "config", options: LoadConfigOptions = {}): BuilderConfig {
  let input = raw;
  if (isLegacyConfig(raw)) {
    const migrated = migrateLegacyObject(raw);
    (options.notice ?? console.warn)(`kiln: ${what} is a flat (nanoGPT-style) config; migrated: ${migrated.notice}`);
    input = migrated.config;
  }
  const keyed = normalizeConfigKeys(input, { source: "file", what });
  const result = BuilderConfigSchema.safeParse(keyed);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const field = issue.path.join(".");
      const value = valueAt(keyed, issue.path as (string | number)[]);
      return `  ${field || "(root)"}: ${issue.message}${value !== undefined ? ` (got ${JSON.stringify(value)})` : ""}`;
    });
    throw new ConfigError(`invalid ${what}:\n${lines.join("\n")}`);
  }
  return new BuilderConfig(result.data, what);
}

/**
 * The problems that make a config unusable (beyond its schema): embeddingDim not a multiple of
 * numHeads, a GPT without biases, a vocabulary that differs from the tokenizer's.
 */
export function validateConfig(config: BuilderConfig | BuilderConfigInput, options: { tokenizerVocabSize?: number } = {}): { isValid: boolean; errors: ConfigProblem[] } {
  const errors: ConfigProblem[] = [];
  let parsed: BuilderConfig;
  if (config instanceof BuilderConfig) parsed = config;
  else {
    try {
      parsed = parseConfig(config as Record<string, unknown>, "config", { notice: () => {} });
    } catch (e) {
      const lines = (e as Error).message.split("\n").slice(1);
      for (const line of lines) {
        const m = /^\s+([^:]+): (.*)$/.exec(line);
        errors.push({ field: m?.[1] ?? "(root)", value: undefined, message: m?.[2] ?? line.trim() });
      }
      return { isValid: false, errors };
    }
  }
  const m = parsed.model;
  if (m.embeddingDim % m.numHeads !== 0) {
    errors.push({ field: "model.embeddingDim", value: m.embeddingDim, message: `must be a multiple of model.numHeads (${m.numHeads})` });
  }
  if (m.modelType === "gpt" && m.bias === false) errors.push({ field: "model.bias", value: false, message: "kiln's GPT-2 has biases (use modelType llama for a bias-free model)" });
  if (m.modelType === "llama" && m.bias === true) errors.push({ field: "model.bias", value: true, message: "kiln's Llama has no biases" });
  if (m.modelType === "llama" && (m.embeddingDim / m.numHeads) % 2 !== 0 && m.embeddingDim % m.numHeads === 0) {
    errors.push({ field: "model.numHeads", value: m.numHeads, message: `RoPE needs an even head size (embeddingDim / numHeads = ${m.embeddingDim / m.numHeads})` });
  }
  if (options.tokenizerVocabSize !== undefined && m.vocabSize !== options.tokenizerVocabSize) {
    errors.push({ field: "model.vocabSize", value: m.vocabSize, message: `the tokenizer has ${options.tokenizerVocabSize} tokens` });
  }
  if (parsed.training.maxSteps !== undefined && parsed.training.warmupSteps > parsed.training.maxSteps) {
    errors.push({ field: "training.warmupSteps", value: parsed.training.warmupSteps, message: `is more than training.maxSteps (${parsed.training.maxSteps})` });
  }
  return { isValid: errors.length === 0, errors };
}

/**
 * Repairs what is safe to repair and says what it did: embeddingDim rounded up to a multiple of
 * numHeads, bias set to what the model type has, vocabSize set to the tokenizer's, warmup capped.
 * Problems it cannot repair are left in `remaining`.
 */
export function fixConfig(config: BuilderConfig, errors: ConfigProblem[], options: { tokenizerVocabSize?: number } = {}): { config: BuilderConfig; fixes: string[]; remaining: ConfigProblem[] } {
  const out = new BuilderConfig(structuredClone(config.toJSON()), config.source);
  const fixes: string[] = [];
  const remaining: ConfigProblem[] = [];
  for (const e of errors) {
    const m = out.model;
    if (e.field === "model.embeddingDim" && m.embeddingDim % m.numHeads !== 0) {
      const to = Math.ceil(m.embeddingDim / m.numHeads) * m.numHeads;
      fixes.push(`model.embeddingDim ${m.embeddingDim} -> ${to} (a multiple of numHeads ${m.numHeads})`);
      m.embeddingDim = to;
    } else if (e.field === "model.bias") {
      const to = m.modelType === "gpt";
      fixes.push(`model.bias ${m.bias} -> ${to} (what kiln's ${m.modelType} has)`);
      m.bias = to;
    } else if (e.field === "model.vocabSize" && options.tokenizerVocabSize !== undefined) {
      fixes.push(`model.vocabSize ${m.vocabSize} -> ${options.tokenizerVocabSize} (the tokenizer's)`);
      m.vocabSize = options.tokenizerVocabSize;
    } else if (e.field === "training.warmupSteps" && out.training.maxSteps !== undefined) {
      fixes.push(`training.warmupSteps ${out.training.warmupSteps} -> ${out.training.maxSteps} (training.maxSteps)`);
      out.training.warmupSteps = out.training.maxSteps;
    } else remaining.push(e);
  }
  return { config: out, fixes, remaining };
}

/** The engine's TrainingConfig keys (trainModel / Trainer) for a builder config. */
export function toTrainingConfig(config: BuilderConfig): Record<string, unknown> {
  const t = config.training;
  return {
    learningRate: t.learningRate, batchSize: t.batchSize, epochs: t.epochs, maxSteps: t.maxSteps,
    warmupSteps: t.warmupSteps, useLrSchedule: t.warmupSteps > 0, weightDecay: t.weightDecay, maxGradNorm: t.maxGradNorm,
    checkpointInterval: t.saveEvery, loggingInterval: t.logEvery, randomSeed: config.system.randomSeed,
    deterministic: config.system.deterministic, maxSeqLength: config.model.maxSeqLength,
  };
}

function valueAt(obj: unknown, path: (string | number)[]): unknown {
  return path.reduce<unknown>((v, k) => (v && typeof v === "object" ? (v as Record<string, unknown>)[k as string] : undefined), obj);
}

function isPlain(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === "object" && !Array.isArray(v);
}
