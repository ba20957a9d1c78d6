// The one config-key normaliser (DESIGN.md "Names shared across issues"). Config keys are camelCase
// in the TypeScript API. Files (YAML/JSON) and the fine-tuning facade also accept the snake_case
// names users bring from PEFT/TRL/nanoGPT (`learning_rate`, `per_device_batch_size`, `num_epochs`),
// mapped here to the canonical names; renamed legacy keys are errors that name the new key,
// everywhere (or, for the old helper's parameter names, a one-time notice when `legacy` is on).

import { ConfigError } from "./config.ts";

/** snake_case / foreign names accepted in files → the canonical camelCase key. */
export const KEY_ALIASES: Readonly<Record<string, string>> = {
  num_epochs: "epochs", num_train_epochs: "epochs",
  per_device_batch_size: "batchSize", per_device_train_batch_size: "batchSize", batch_size: "batchSize",
  learning_rate: "learningRate", lr: "learningRate",
  max_steps: "maxSteps", max_iters: "maxSteps", iters: "maxSteps",
  max_grad_norm: "maxGradNorm", grad_clip: "maxGradNorm",
  gradient_accumulation_steps: "gradientAccumulationSteps",
  max_seq_length: "maxSeqLength", max_length: "maxSeqLength",
  weight_decay: "weightDecay", use_amp: "useAmp", random_seed: "randomSeed", seed: "randomSeed",
  use_lr_schedule: "useLrSchedule", warmup_steps: "warmupSteps", pad_token_id: "padTokenId",
};

/** Renamed legacy keys → the key (or setting) that replaced them. Always an error, except in legacy mode. */
export const RENAMED_KEYS: Readonly<Record<string, { to: string; value?: (v: unknown) => Record<string, unknown> }>> = {
  n_epochs: { to: "epochs" },
  gradient_clip_norm: { to: "maxGradNorm" },
  use_wandb: { to: 'logger (a logger name, e.g. logger: "wandb")', value: (v) => (v ? { logger: "wandb" } : {}) },
  multi: { to: "trainLoaderConfig / valLoaderConfig (a MultiDataLoaderConfig each)" },
  mixed_precision: { to: "performance.useAmp: true", value: (v) => ({ useAmp: v === "16-mixed" || v === "bf16-mixed" || v === true }) },
  num_workers: { to: "performance.dataloaderNumWorkers" },
};

/** Old parameter names that `legacy` mode maps (with one notice) instead of refusing. */
const LEGACY_MAPPABLE = new Set(["n_epochs", "gradient_clip_norm", "use_wandb", "learning_rate", "batch_size", "weight_decay",
  "use_amp", "gradient_accumulation_steps", "random_seed", "use_lr_schedule"]);

export interface NormalizeOptions {
  /** "file": snake_case accepted as aliases; "api": snake_case keys are errors with the camelCase hint */
  source: "file" | "api";
  /** what is being configured, for messages ("TrainingConfig", "config.yaml") */
  what?: string;
  /** map renamed legacy keys (old helper's parameter names) with a notice instead of an error */
  legacy?: boolean;
  /** where notices go (default console.warn, once per key per process) */
  notice?: (line: string) => void;
  /** the alias table (default KEY_ALIASES, the TrainingConfig names) */
  aliases?: Readonly<Record<string, string>>;
}

// keys already noticed, per notice sink (console.warn by default): once per key per process
const noticedBy = new WeakMap<(line: string) => void, Set<string>>();
function noticeOnce(key: string, line: string, sink: (line: string) => void): void {
  let seen = noticedBy.get(sink);
  if (!seen) noticedBy.set(sink, (seen = new Set()));
  if (!seen.has(key)) sink(line);
  seen.add(key);
}

/** Returns a copy of `input` with canonical keys, recursing into nested plain objects. */
export function normalizeConfigKeys(input: Record<string, unknown>, options: NormalizeOptions, path = ""): Record<string, unknown> {
  const what = options.what ?? "config";
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) {
    const at = path ? `${path}.${key}` : key;
    const renamed = RENAMED_KEYS[key];
    if (renamed) {
      if (options.legacy && LEGACY_MAPPABLE.has(key)) {
        const mapped = renamed.value ? renamed.value(value) : { [renamed.to]: value };
        noticeOnce(key, `kiln: "${key}" is now "${renamed.to}" (mapped for you; use the new name)`, options.notice ?? console.warn);
        Object.assign(out, mapped);
        continue;
      }
      throw new ConfigError(`${what}: "${at}" was renamed: use ${renamed.to}`);
    }
    let name = key;
    if (key.includes("_")) {
      const canonical = (options.aliases ?? KEY_ALIASES)[key] ?? snakeToCamel(key);
      if (options.source === "api" && !(options.legacy && LEGACY_MAPPABLE.has(key))) {
        throw new ConfigError(`${what}: "${at}" is not a key of the TypeScript API: use ${canonical}`);
      }
      if (options.legacy && LEGACY_MAPPABLE.has(key)) {
        noticeOnce(key, `kiln: "${key}" is now "${canonical}" (mapped for you; use the new name)`, options.notice ?? console.warn);
      }
      name = canonical;
    } else if (options.source === "file" && (options.aliases ?? KEY_ALIASES)[key]) {
      name = (options.aliases ?? KEY_ALIASES)[key];
    }
    if (name in out) throw new ConfigError(`${what}: "${at}" is given twice (as ${name} too)`);
    out[name] = isPlain(value) ? normalizeConfigKeys(value, options, at) : value;
  }
  return out;
}

function snakeToCamel(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function isPlain(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === "object" && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

/** The same foreign names for `kiln train`'s config file, whose train section keeps nanoGPT's short names. */
export const RUN_CONFIG_ALIASES: Readonly<Record<string, string>> = {
  learning_rate: "lr", learningRate: "lr", max_iters: "iters", max_steps: "iters", maxSteps: "iters", batch_size: "batchSize",
  per_device_batch_size: "batchSize", grad_clip: "gradClip", max_grad_norm: "gradClip", maxGradNorm: "gradClip",
  gradient_accumulation_steps: "gradAccum", gradientAccumulationSteps: "gradAccum", lr_decay_iters: "decayIters",
  random_seed: "seed", randomSeed: "seed", block_size: "blockSize",
};

/** A `kiln train` YAML/JSON config with snake_case (nanoGPT, HF) keys → RunConfig's keys. */
export function normalizeRunConfigFile(input: Record<string, unknown>, path: string): Record<string, unknown> {
  return normalizeConfigKeys(input, { source: "file", what: path, aliases: RUN_CONFIG_ALIASES });
}
