// GenericTrainerConfig: the engine's knobs (zod; errors name the field and value). Loaders are
// always named lists (trainLoaderConfig / valLoaderConfig, each a MultiDataLoaderConfig). The same
// keys load from YAML/JSON (snake_case accepted: profile_training); old keys name their successors.

import { z } from "zod";
import { ConfigError, readConfigFile } from "./config.ts";
import { normalizeConfigKeys } from "./config_keys.ts";
import { MultiDataLoaderConfig, MultiDataLoaderConfigSchema } from "./sampling.ts";
import { parseOrThrow } from "./training_config.ts";

const LoaderConfig = z.union([z.instanceof(MultiDataLoaderConfig), MultiDataLoaderConfigSchema]);

export const GenericTrainerConfigSchema = z.strictObject({
  trainLoaderConfig: LoaderConfig,
  valLoaderConfig: LoaderConfig.optional(),
  /** per-loader phase timings (data, forward, backward, optimizer), logged every logScalarsEveryNSteps */
  profileTraining: z.boolean().default(true),
  logScalarsEveryNSteps: z.number().int().positive().default(50),
  gradientAccumulationSteps: z.number().int().positive().default(1),
  /** clip the global gradient norm of the stepping optimizers' parameters (0: off) */
  maxGradNorm: z.number().nonnegative().default(0),
  maxEpochs: z.number().int().positive().optional(),
  maxSteps: z.number().int().positive().optional(),
  /** validate every this many optimizer steps too (0: only at epoch ends) */
  valEveryNSteps: z.number().int().nonnegative().default(0),
  checkpointEveryNSteps: z.number().int().nonnegative().default(0),
  checkpointEveryNEpochs: z.number().int().nonnegative().default(1),
  keepLast: z.number().int().positive().default(2),
  randomSeed: z.number().int().default(1337),
  /** false: the training step does backward and steps itself (trainer.optimizers), Lightning's manual mode */
  automaticOptimization: z.boolean().default(true),
  /** loader name → indices of the optimizers that step on its batches (default: all step every batch) */
  optimizerLoaders: z.record(z.string(), z.array(z.number().int().nonnegative())).optional(),
  /** run folder: metrics, checkpoints, report (none: nothing on disk) */
  outDir: z.string().optional(),
  /** "jsonl" (default), "csv", "html" */
  loggers: z.array(z.enum(["jsonl", "csv", "html"])).default(["jsonl"]),
  performance: z.strictObject({
    useAmp: z.boolean().default(false),
    /** run the dynamic loss scaler even in f32 (what AMP does around the step, without f16) */
    lossScaling: z.boolean().default(false),
    dataloaderNumWorkers: z.number().int().nonnegative().default(0),
  }).default({ useAmp: false, lossScaling: false, dataloaderNumWorkers: 0 }),
});
export type GenericTrainerConfigValues = z.infer<typeof GenericTrainerConfigSchema>;

export class GenericTrainerConfig {
  constructor(input: z.input<typeof GenericTrainerConfigSchema>, options: { source?: "file" | "api" } = {}) {
    const source = options.source ?? "api";
    if (input && typeof input === "object" && !("trainLoaderConfig" in input) && !("train_loader_config" in input) && !("multi" in input)) {
      throw new ConfigError("GenericTrainerConfig needs trainLoaderConfig: a MultiDataLoaderConfig naming the train loaders, even for one: new MultiDataLoaderConfig({ dataloaderNames: [\"train\"] })");
    }
    const { trainLoaderConfig, valLoaderConfig, ...rest } = input as Record<string, unknown>;
    const keyed = normalizeConfigKeys(rest, { source, what: "GenericTrainerConfig" });
    if ("data" in keyed) throw new ConfigError('GenericTrainerConfig: "data" is not a key (data.num_workers is now performance.dataloaderNumWorkers)');
    const loader = (v: unknown, key: string) => (v === undefined || v instanceof MultiDataLoaderConfig ? v : new MultiDataLoaderConfig(v as never, { source }));
    const values = parseOrThrow(GenericTrainerConfigSchema, { ...keyed, trainLoaderConfig: loader(trainLoaderConfig ?? (input as Record<string, unknown>).train_loader_config, "trainLoaderConfig"), valLoaderConfig: loader(valLoaderConfig ?? (input as Record<string, unknown>).val_loader_config, "valLoaderConfig") }, "GenericTrainerConfig");
    Object.assign(this, values);
  }

  /** Loads a YAML or JSON file with the same keys (snake_case accepted). */
  static async fromFile(path: string): Promise<GenericTrainerConfig> {
    return new GenericTrainerConfig((await readConfigFile(path)) as never, { source: "file" });
  }
}
export interface GenericTrainerConfig extends Omit<GenericTrainerConfigValues, "trainLoaderConfig" | "valLoaderConfig"> {
  trainLoaderConfig: MultiDataLoaderConfig;
  valLoaderConfig?: MultiDataLoaderConfig;
}
