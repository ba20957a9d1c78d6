// TrainingConfig: the Trainer's knobs as a zod schema (errors name the field and the bad value),
// and TaskSpec: what is being learned (language modeling, classification, regression, or a custom
// loss), which sets the default loss and metrics. Keys are camelCase; snake_case names are
// accepted from files and refused in the API with the camelCase hint (config_keys.ts).

import { z } from "zod";
import type { Tensor } from "../tensor/tensor.ts";
import type { Module } from "../nn/module.ts";
import { ConfigError } from "./config.ts";
import { normalizeConfigKeys } from "./config_keys.ts";

export const TrainingConfigSchema = z.strictObject({
  learningRate: z.number().positive(),
  batchSize: z.number().int().positive(),
  epochs: z.number().int().positive(),
  /** stop after this many optimizer steps even mid-epoch */
  maxSteps: z.number().int().positive().optional(),
  weightDecay: z.number().nonnegative().default(0.01),
  /** clip the global gradient norm to this (0: off) */
  maxGradNorm: z.number().nonnegative().default(1.0),
  /** f16 compute with f32 master weights and a dynamic loss scaler, where the backend has f16 arithmetic */
  useAmp: z.boolean().default(false),
  gradientAccumulationSteps: z.number().int().positive().default(1),
  randomSeed: z.number().int().default(42),
  /** refuse nondeterministic shortcuts (kiln's kernels are deterministic; recorded in the run) */
  deterministic: z.boolean().default(true),
  /** linear warmup then cosine decay to 10% (nanoGPT's get_lr); false: constant learningRate */
  useLrSchedule: z.boolean().default(false),
  warmupSteps: z.number().int().nonnegative().default(0),
  earlyStopping: z.strictObject({
    patience: z.number().int().positive(),
    minDelta: z.number().nonnegative().default(0),
    metric: z.string().default("val/loss"),
    mode: z.enum(["min", "max"]).default("min"),
  }).optional(),
  /** write a checkpoint every this many epochs (0: only at the end) */
  checkpointInterval: z.number().int().nonnegative().default(1),
  /** checkpoints kept */
  keepLast: z.number().int().positive().default(2),
  /** log a metrics line every this many optimizer steps */
  loggingInterval: z.number().int().positive().default(10),
  /** loggers by name: "jsonl" (default), "csv", "html" */
  logger: z.union([z.string(), z.array(z.string())]).default("jsonl"),
  /** pad id for collating rows of different lengths */
  padTokenId: z.number().int().optional(),
  /** truncation length of a training example */
  maxSeqLength: z.number().int().positive().optional(),
});
export type TrainingConfigValues = z.infer<typeof TrainingConfigSchema>;

const REQUIRED = ["learningRate", "batchSize", "epochs"] as const;

/** The validated config; `new TrainingConfig({...})` throws a ConfigError naming each bad or missing field. */
export class TrainingConfig {
  constructor(input: z.input<typeof TrainingConfigSchema>, options: { source?: "file" | "api"; legacy?: boolean } = {}) {
    const keyed = normalizeConfigKeys(input as Record<string, unknown>, { source: options.source ?? "api", what: "TrainingConfig", legacy: options.legacy });
    Object.assign(this, parseOrThrow(TrainingConfigSchema, keyed, "TrainingConfig"));
  }
  /** From a YAML/JSON object (snake_case keys accepted). */
  static fromFile(values: Record<string, unknown>): TrainingConfig {
    return new TrainingConfig(values as z.input<typeof TrainingConfigSchema>, { source: "file" });
  }
}
export interface TrainingConfig extends TrainingConfigValues {}

/** Parses with zod; a ConfigError lists every bad field with its value, and names missing required ones. */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: Record<string, unknown>, what: string): z.infer<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const path = issue.path.join(".");
    const value = issue.path.reduce<unknown>((v, k) => (v && typeof v === "object" ? (v as Record<string, unknown>)[k as string] : undefined), input);
    if (value === undefined && (REQUIRED as readonly string[]).includes(path)) return `  ${path}: required (missing)`;
    return `  ${path || "(root)"}: ${issue.message}${value !== undefined ? ` (got ${JSON.stringify(value)})` : ""}`;
  });
  throw new ConfigError(`invalid ${what}:\n${lines.join("\n")}`);
}

export type TaskType = "language_modeling" | "classification" | "regression";

/** What a batch is trained for. A custom `loss` replaces the task's default. */
export interface TaskSpec {
  type: TaskType | "custom";
  /** (model, batch) → loss tensor or { loss, metrics } (required for "custom") */
  loss?: (model: Module, batch: Record<string, Tensor>) => Tensor | { loss: Tensor; metrics?: Record<string, Tensor | number> };
  /** pad id of the inputs (needed wherever rows of different lengths are collated) */
  padTokenId?: number;
}

/**
 * Infers the task from a batch { x, y }: integer targets shaped like the input → language modeling,
 * one integer per row → classification, floats → regression.
 */
export function inferTask(batch: { x?: Tensor; y?: Tensor }): TaskType {
  const { x, y } = batch;
  if (!x || !y) throw new ConfigError("cannot infer the task: batches need { x, y } tensors (or pass a TaskSpec with a loss)");
  if (y.dtype === "f32") return "regression";
  if (y.rank === x.rank && y.shape.every((d, i) => d === x.shape[i])) return "language_modeling";
  if (y.rank === 1 && y.shape[0] === x.shape[0]) return "classification";
  throw new ConfigError(`cannot infer the task from targets ${y.describe()} for inputs ${x.describe()}: pass a TaskSpec`);
}
