// The shared config-key normaliser and the config schemas: snake_case aliases in files, camelCase
// hints in the API, renamed legacy keys named with their successors, missing required fields named.

import { describe, expect, test } from "bun:test";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { normalizeConfigKeys } from "../../src/train/config_keys.ts";
import { TrainingConfig } from "../../src/train/training_config.ts";
import { GenericTrainerConfig } from "../../src/train/engine_config.ts";
import { MultiDataLoaderConfig, SamplingStrategy } from "../../src/train/sampling.ts";

describe("normalizeConfigKeys", () => {
  test("files: PEFT/TRL/nanoGPT names map to the canonical keys, nested too", () => {
    expect(normalizeConfigKeys({ learning_rate: 1e-3, per_device_batch_size: 4, num_epochs: 2, max_iters: 100, grad_clip: 1, gradient_accumulation_steps: 2, max_seq_length: 128, performance: { use_amp: true } }, { source: "file" }))
      .toEqual({ learningRate: 1e-3, batchSize: 4, epochs: 2, maxSteps: 100, maxGradNorm: 1, gradientAccumulationSteps: 2, maxSeqLength: 128, performance: { useAmp: true } });
    expect(normalizeConfigKeys({ profile_training: false, max_grad_norm: 0.5 }, { source: "file" })).toEqual({ profileTraining: false, maxGradNorm: 0.5 });
  });

  test("the API refuses snake_case with the camelCase name", () => {
    expect(() => normalizeConfigKeys({ learning_rate: 1 }, { source: "api", what: "TrainingConfig" })).toThrow('TrainingConfig: "learning_rate" is not a key of the TypeScript API: use learningRate');
  });

  test("renamed legacy keys are errors naming the new key, in files and the API", () => {
    const table: [string, RegExp][] = [
      ["n_epochs", /use epochs/], ["gradient_clip_norm", /use maxGradNorm/], ["use_wandb", /logger \(a logger name/],
      ["multi", /trainLoaderConfig \/ valLoaderConfig/], ["mixed_precision", /performance\.useAmp: true/], ["num_workers", /performance\.dataloaderNumWorkers/],
    ];
    for (const [key, hint] of table) {
      for (const source of ["file", "api"] as const) expect(() => normalizeConfigKeys({ [key]: 1 }, { source })).toThrow(hint);
    }
  });

  test("legacy mode maps the old helper's names with one notice each", () => {
    const notices: string[] = [];
    const notice = (l: string) => void notices.push(l);
    const out = normalizeConfigKeys({ n_epochs: 3, gradient_clip_norm: 0.5, learning_rate: 1e-3 }, { source: "api", legacy: true, notice });
    expect(out).toEqual({ epochs: 3, maxGradNorm: 0.5, learningRate: 1e-3 });
    expect(notices.join("\n")).toContain('"n_epochs" is now "epochs"');
    normalizeConfigKeys({ n_epochs: 4 }, { source: "api", legacy: true, notice });
    expect(notices.filter((l) => l.includes("n_epochs"))).toHaveLength(1);
  });

  test("a key given twice (alias and canonical) is an error", () => {
    expect(() => normalizeConfigKeys({ batch_size: 2, batchSize: 4 }, { source: "file" })).toThrow(/given twice/);
  });
});

describe("TrainingConfig", () => {
  test("missing required fields are named, each", () => {
    let message = "";
    try {
      new TrainingConfig({ weightDecay: 0 } as never);
    } catch (e) {
      message = (e as Error).message;
    }
    for (const f of ["learningRate", "batchSize", "epochs"]) expect(message).toContain(`${f}: required (missing)`);
  });

  test("a bad value names field and value; snake_case from a file works; the renamed table errors in the API", () => {
    expect(() => new TrainingConfig({ learningRate: -1, batchSize: 2, epochs: 1 })).toThrow(/learningRate: .*\(got -1\)/);
    const c = TrainingConfig.fromFile({ learning_rate: 0.01, batch_size: 8, num_epochs: 3, use_lr_schedule: true, warmup_steps: 5 });
    expect([c.learningRate, c.batchSize, c.epochs, c.useLrSchedule, c.warmupSteps]).toEqual([0.01, 8, 3, true, 5]);
    expect(() => new TrainingConfig({ learningRate: 1, batchSize: 1, epochs: 1, n_epochs: 2 } as never)).toThrow('"n_epochs" was renamed: use epochs');
    expect(() => new TrainingConfig({ learningRate: 1, batchSize: 1, epochs: 1, use_amp: true } as never)).toThrow("use useAmp");
  });
});

describe("GenericTrainerConfig", () => {
  const train = new MultiDataLoaderConfig({ samplingStrategy: SamplingStrategy.WEIGHTED, dataloaderNames: ["web", "code"], dataloaderWeights: [0.7, 0.3] });

  test("a missing MultiDataLoaderConfig says what to add; old keys name the new ones", () => {
    expect(() => new GenericTrainerConfig({} as never)).toThrow(/needs trainLoaderConfig: a MultiDataLoaderConfig/);
    expect(() => new GenericTrainerConfig({ multi: {} } as never)).toThrow(/"multi" was renamed: use trainLoaderConfig \/ valLoaderConfig/);
    expect(() => new GenericTrainerConfig({ trainLoaderConfig: train, performance: { mixed_precision: "16-mixed" } } as never)).toThrow(/performance\.useAmp: true/);
    expect(() => new GenericTrainerConfig({ trainLoaderConfig: train, data: { num_workers: 2 } } as never)).toThrow(/performance\.dataloaderNumWorkers/);
  });

  test("WEIGHTED without weights, ALTERNATING with an unknown loader are refused", () => {
    expect(() => new MultiDataLoaderConfig({ samplingStrategy: "weighted", dataloaderNames: ["a", "b"] })).toThrow(/dataloaderWeights/);
    expect(() => new MultiDataLoaderConfig({ samplingStrategy: "alternating", dataloaderNames: ["a"], alternatingPattern: ["a", "z"] })).toThrow(/"z" is not one of the loaders/);
  });

  test("loads YAML with the same keys, snake_case accepted", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kiln-gtc-"));
    const file = join(dir, "engine.yaml");
    await writeFile(file, "train_loader_config:\n  sampling_strategy: round_robin\n  dataloader_names: [a, b]\nprofile_training: false\nlog_scalars_every_n_steps: 5\nperformance:\n  use_amp: true\n");
    const c = await GenericTrainerConfig.fromFile(file);
    expect(c.profileTraining).toBe(false);
    expect(c.logScalarsEveryNSteps).toBe(5);
    expect(c.performance.useAmp).toBe(true);
    expect(c.trainLoaderConfig.samplingStrategy).toBe("round_robin");
    expect(c.trainLoaderConfig.dataloaderNames).toEqual(["a", "b"]);
  });
});

describe("kiln train config files", () => {
  test("nanoGPT / HF snake_case keys map to the run config's names; a key twice and renamed keys are refused", async () => {
    const { normalizeRunConfigFile } = await import("../../src/train/config_keys.ts");
    expect(normalizeRunConfigFile({ model: { n_layer: 2, n_embd: 64, block_size: 32 }, train: { learning_rate: 3e-3, max_iters: 50, batch_size: 8, grad_clip: 0.5, gradient_accumulation_steps: 2, eval_interval: 10 } }, "c.yaml"))
      .toEqual({ model: { nLayer: 2, nEmbd: 64, blockSize: 32 }, train: { lr: 3e-3, iters: 50, batchSize: 8, gradClip: 0.5, gradAccum: 2, evalInterval: 10 } } as never);
    expect(() => normalizeRunConfigFile({ train: { learning_rate: 1, lr: 2 } }, "c.yaml")).toThrow(/c\.yaml: "train\.lr" is given twice/);
    expect(() => normalizeRunConfigFile({ train: { n_epochs: 2 } }, "c.yaml")).toThrow(/"train\.n_epochs" was renamed: use epochs/);
  });
});
