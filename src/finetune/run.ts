// What the SFT and DPO trainers share: the adapter a trainer owns, the engine arguments a config
// maps to, running the engine's one loop, and the results type in the seeds' snake_case view.
// A config error throws when the trainer is created; a failure while training (a bad data row,
// NaN, out of memory) comes back as success: false with the message, the last checkpoint kept.

import { mkdir } from "node:fs/promises";
import type { z } from "zod";
import { Trainer, type BatchSource, type Hooks, type LossFn, type TrainingResult } from "../train/trainer.ts";
import type { TrainArgs } from "../train/args.ts";
import { AdamW } from "../optim/adamw.ts";
import { withBackend } from "../tensor/tensor.ts";
import { Rng } from "../tensor/random.ts";
import { applyLora, formatParameterCounts, loraLayers, setAdapter } from "../nn/lora_model.ts";
import type { ModelInterface } from "./model.ts";
import type { SftConfig } from "./config.ts";

/** The engine's TrainingResult, with the names the fine-tuning API's users know. */
export interface FinetuneResult extends Partial<TrainingResult> {
  success: boolean;
  /** mean training loss over the last logging window */
  final_loss: number | null;
  training_time_seconds: number;
  samples_trained: number;
  adapter_path: string | null;
  error_message: string | null;
  /** last step's metrics (DPO rewards/*, logps/*), eval_loss, rows skipped, parameter counts */
  metrics: Record<string, number>;
}

type Shared = Pick<SftConfig, "loraR" | "loraAlpha" | "loraDropout" | "targetModules" | "useRslora" | "modulesToSave" | "randomSeed">;

/**
 * The adapter a trainer trains: the model's active adapter when it has one (training continues
 * it, as a new TRL trainer on the same PEFT model), else a new "default" adapter from the config.
 */
export function ownAdapter(model: ModelInterface, config: Shared, log: (s: string) => void): string {
  const existing = loraLayers(model.module).find(([, l]) => l.activeAdapter !== null)?.[1].activeAdapter;
  if (existing) {
    setAdapter(model.module, existing); // trainable again (a loaded adapter may be inference-only)
  } else {
    applyLora(model.module, {
      r: config.loraR, loraAlpha: config.loraAlpha, loraDropout: config.loraDropout, targetModules: config.targetModules,
      useRslora: config.useRslora, modulesToSave: config.modulesToSave,
      rng: new Rng(config.randomSeed), // the adapter's init follows the config's seed, not whatever drew from the global RNG before
    });
  }
  log(formatParameterCounts(model.module));
  return existing ?? "default";
}

/** Engine arguments for `iters` steps from a fine-tuning config. */
export function engineArgs(config: Omit<SftConfig, "maxSeqLength" | "completionOnlyLoss" | "packing">, iters: number, evalBatches: number): z.input<typeof TrainArgs> {
  const warmup = config.warmupSteps || Math.round(config.warmupRatio * iters);
  return {
    iters, batchSize: config.batchSize, gradAccum: config.gradientAccumulationSteps,
    lr: config.learningRate, minLr: 0, warmupIters: Math.min(warmup, iters), schedule: config.lrSchedulerType,
    weightDecay: config.weightDecay, beta1: config.adamBeta1, beta2: config.adamBeta2, eps: config.adamEpsilon,
    gradClip: config.maxGradNorm, evalInterval: config.evalSteps, evalIters: Math.max(1, evalBatches),
    finalEvalIters: Math.max(1, evalBatches), logInterval: config.loggingSteps, checkpointInterval: config.saveSteps,
    seed: config.randomSeed,
  };
}

/** AdamW over the trainable parameters (adapters, modules_to_save), decay on all of them as HF does for weights. */
export function adapterOptimizer(model: ModelInterface, config: Pick<SftConfig, "learningRate" | "weightDecay" | "adamBeta1" | "adamBeta2" | "adamEpsilon">): AdamW {
  const params = model.module.trainableParameters();
  if (!params.length) throw new Error("[finetune] nothing to train: the model has no trainable parameters");
  return new AdamW(
    [
      { params: params.filter((p) => p.rank >= 2), weightDecay: config.weightDecay },
      { params: params.filter((p) => p.rank < 2), weightDecay: 0 },
    ],
    { lr: config.learningRate, betas: [config.adamBeta1, config.adamBeta2], eps: config.adamEpsilon },
  );
}

export interface RunOptions<B> {
  model: ModelInterface;
  data: BatchSource<B>;
  loss: LossFn<B>;
  args: z.input<typeof TrainArgs>;
  optimizer: AdamW;
  tokens: (batch: B) => number;
  outDir: string | null;
  resume: boolean;
  progress: boolean;
  /** examples per optimizer step, for samples_trained */
  samplesPerStep: number;
  /** whether the val split is real held-out data (else its loss is not reported) */
  hasEval: boolean;
  metrics?: Record<string, number>;
  signal?: AbortSignal;
  /** called with the first step (after a resume, the checkpoint's) before training starts */
  onTrainBegin?: (step: number) => void;
  /** the caller's hooks (the engine's names: onBatchEnd, onCheckpoint, ...), after the trainer's own */
  hooks?: FinetuneHooks[];
}

/** Hooks a fine-tuning caller passes to train(): the engine's hook names, with the step API's Trainer (its args.iters is the run's length). */
export type FinetuneHooks = Partial<Hooks<unknown>>;

/** Runs the engine's loop and maps its result; never throws for a failure during training. */
export function runEngine<B>(o: RunOptions<B>): Promise<FinetuneResult> {
  // tensors made without an explicit backend (the engine's own) go to the model's
  return withBackend(o.model.backend, () => run(o));
}

async function run<B>(o: RunOptions<B>): Promise<FinetuneResult> {
  const t0 = performance.now();
  let lastMetrics: Record<string, number> = {};
  const hooks: Partial<Hooks<B>>[] = [{
    // after a resume the trainer's step is the checkpoint's
    onTrainBegin: (t) => o.onTrainBegin?.(t.globalStep),
    onBatchEnd: (_t, _b, out) => void (lastMetrics = out.metrics),
  }, ...((o.hooks ?? []) as Partial<Hooks<B>>[])];
  try {
    if (o.outDir) await mkdir(o.outDir, { recursive: true });
    const trainer = new Trainer<B>({
      model: o.model.module, data: o.data, args: o.args, loss: o.loss, optimizer: o.optimizer, tokens: o.tokens,
      outDir: o.outDir, resume: o.resume, hooks, progress: o.progress ? undefined : false, signal: o.signal,
    });
    const r = await trainer.fit();
    const window = Math.max(1, o.args.logInterval ?? 10);
    const tail = r.lossHistory.slice(-window);
    const finalLoss = tail.length ? tail.reduce((s, l) => s + l, 0) / tail.length : null;
    const ok = r.stoppedBy !== "nan";
    return {
      ...r,
      success: ok,
      final_loss: finalLoss,
      training_time_seconds: r.trainingTime,
      samples_trained: r.steps * o.samplesPerStep,
      adapter_path: null,
      error_message: ok ? null : `the loss became ${r.finalLoss} (NaN or infinite)${r.checkpointPath ? `; the last checkpoint is ${r.checkpointPath}` : ""}`,
      metrics: { ...o.metrics, ...lastMetrics, ...(o.hasEval && r.finalValLoss !== undefined ? { eval_loss: r.finalValLoss } : {}) },
    };
  } catch (e) {
    return {
      success: false, final_loss: null, training_time_seconds: (performance.now() - t0) / 1000, samples_trained: 0,
      adapter_path: null, error_message: e instanceof Error ? e.message : String(e), metrics: { ...o.metrics },
    };
  }
}
