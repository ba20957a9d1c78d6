// The fine-tuning configs: SftConfig and DpoConfig (zod, camelCase), reached from the keys PEFT/TRL
// users write (learning_rate, per_device_batch_size, lora_r, target_modules, ...) through the
// config-key normaliser. Defaults are TRL's/PEFT's unless noted. Unknown keys are errors that
// name the nearest valid key.

import { z } from "zod";
import { normalizeKeys } from "../train/keys.ts";

const LoraFields = {
  /** LoRA rank (PEFT r) */
  loraR: z.number().int().positive().default(8),
  loraAlpha: z.number().positive().default(16),
  /** dropout on the adapters' inputs */
  loraDropout: z.number().min(0).lt(1).default(0.05),
  /** module names, a regex over module paths, or "all-linear" (PEFT's default for Llama-family models: q_proj, v_proj) */
  targetModules: z.union([z.array(z.string()).min(1), z.string()]).default(["q_proj", "v_proj"]),
  useRslora: z.boolean().default(false),
  /** whole modules trained and saved beside the adapter (e.g. lm_head) */
  modulesToSave: z.array(z.string()).default([]),
};

const LoopFields = {
  learningRate: z.number().positive(),
  epochs: z.number().int().positive().default(3),
  /** optimizer steps to run; overrides epochs when set (HF max_steps) */
  maxSteps: z.number().int().positive().optional(),
  batchSize: z.number().int().positive().default(8),
  gradientAccumulationSteps: z.number().int().positive().default(1),
  weightDecay: z.number().nonnegative().default(0),
  maxGradNorm: z.number().nonnegative().default(1),
  warmupSteps: z.number().int().nonnegative().default(0),
  /** warmup as a fraction of the steps (used when warmupSteps is 0) */
  warmupRatio: z.number().min(0).max(1).default(0),
  /** "cosine" decays to 0 over the run; "constant" keeps the rate */
  lrSchedulerType: z.enum(["cosine", "constant"]).default("cosine"),
  adamBeta1: z.number().min(0).lt(1).default(0.9),
  adamBeta2: z.number().min(0).lt(1).default(0.999),
  adamEpsilon: z.number().positive().default(1e-8),
  /** evaluate on the eval data every this many steps (0: only at the end) */
  evalSteps: z.number().int().nonnegative().default(0),
  /** write a checkpoint to outputDir every this many steps (0: only at the end) */
  saveSteps: z.number().int().nonnegative().default(0),
  loggingSteps: z.number().int().positive().default(10),
  /** run folder: checkpoints/, metrics.jsonl, loss.svg, adapters (null: nothing on disk) */
  outputDir: z.string().nullable().default(null),
  /** continue from the newest checkpoint in outputDir */
  resume: z.boolean().default(false),
  /** seeds the adapter's init, the data order and dropout (TRL/HF `seed`) */
  randomSeed: z.number().int().default(42),
  /** skip bad data rows (counted) instead of stopping at the first */
  skipInvalid: z.boolean().default(false),
  /** print progress (false: silent) */
  progress: z.boolean().default(true),
  /** recompute each transformer block in backward instead of keeping its activations (HF
   *  gradient_checkpointing): less memory for long sequences, one more forward per step */
  gradientCheckpointing: z.boolean().default(false),
};

export const SftConfig = z.strictObject({
  ...LoraFields,
  ...LoopFields,
  learningRate: z.number().positive().default(2e-4),
  /** truncation length of one example, in tokens (TRL max_length) */
  maxSeqLength: z.number().int().positive().default(1024),
  /** loss on completions / assistant turns only (labels -100 on prompts) */
  completionOnlyLoss: z.boolean().default(true),
  /** concatenate examples into maxSeqLength sequences (TRL "wrapped" packing) */
  packing: z.boolean().default(false),
});
export type SftConfig = z.infer<typeof SftConfig>;

export const DpoConfig = z.strictObject({
  ...LoraFields,
  ...LoopFields,
  learningRate: z.number().positive().default(1e-6),
  epochs: z.number().int().positive().default(1),
  beta: z.number().positive().default(0.1),
  lossType: z.enum(["sigmoid", "ipo", "hinge"]).default("sigmoid"),
  labelSmoothing: z.number().min(0).lt(0.5).default(0),
  maxPromptLength: z.number().int().positive().nullable().default(512),
  maxLength: z.number().int().positive().nullable().default(1024),
  /** compute the reference log-probs in one pass before training (no reference forward per step) */
  precomputeRefLogProbs: z.boolean().default(false),
});
export type DpoConfig = z.infer<typeof DpoConfig>;

/** SftConfig from any accepted spelling; throws ConfigError naming bad keys and values. */
export function parseSftConfig(input: Record<string, unknown> = {}, source = "SFT config"): SftConfig {
  return normalizeKeys(SftConfig, input, { aliases: { maxLength: "maxSeqLength", num_epochs_per_topic: "epochs" }, source });
}

export function parseDpoConfig(input: Record<string, unknown> = {}, source = "DPO config"): DpoConfig {
  // TRL's DPO max_length bounds prompt + completion (maxLength), not one SFT example (maxSeqLength)
  return normalizeKeys(DpoConfig, input, { aliases: { max_length: "maxLength" }, source });
}
