// Trainer: one model, one dataset, on the engine (GenericTrainer, the one training loop). Two ways in:
// - the task API (PyTorch Lightning / HF Trainer / Keras fit): new Trainer({ model, trainingConfig,
//   taskSpec?, hooks? }).train(trainData, valData?, { resumeFrom? }) — a DataLoader per dataset, a
//   loss and metrics from the task (inferred from the batch when not given), AdamW, warmup + cosine;
// - the step API `kiln train` uses (nanoGPT): new Trainer({ model, data, args }).fit() — random
//   windows from a BatchSource for args.iters steps, evaluation every evalInterval steps.
// Both return the one TrainingResult. The Trainer's RNG streams are its own (it never writes
// Rng.global); stopping is interrupt() or an AbortSignal (signal handlers belong to the CLI).

import type { z } from "zod";
import type { Module } from "../nn/module.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { Rng } from "../tensor/random.ts";
import * as ops from "../ops/index.ts";
import { AdamW } from "../optim/adamw.ts";
import type { Optimizer } from "../optim/optimizer.ts";
import { warmupCosine } from "../optim/schedule.ts";
import type { Batch, Split } from "../data/dataset.ts";
import { TrainArgs } from "./args.ts";
import { ConfigError } from "./config.ts";
import { GenericTrainer, GenericTrainerConfig, type Loader, type StepOutput } from "./engine.ts";
import { EarlyStopping, type BatchOutputs, type TrainerHooks } from "./hooks.ts";
import { Progress } from "./progress.ts";
import { DataLoader, type Dataset, type TensorBatch } from "./data_loader.ts";
import { TrainingConfig, inferTask, type TaskSpec, type TaskType } from "./training_config.ts";
import type { TrainingResult } from "./result.ts";
import type { MetricRecord } from "./metrics.ts";

export type { TrainingResult } from "./result.ts";
export type { BatchOutputs } from "./hooks.ts";

/** Where batches come from in the step API: the TokenDataset, or anything with the same method; a batch may have any shape. */
export interface BatchSource<B = Batch> {
  batch(split: Split, batchSize: number, rng: Rng): B;
}

/** What a loss function returns: the scalar to minimise, and scalars to log beside it (mean over micro-batches). */
export type LossOutput = StepOutput;
export type LossFn<B = Batch> = (model: Module, batch: B) => Tensor | LossOutput;

/** Hooks with the Trainer as `trainer`; pass a list of objects, each implementing any of them. */
export type Hooks<B = Batch> = TrainerHooks<Trainer<B>, B>;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type TrainData = Dataset | readonly unknown[] | Iterable<unknown> | AsyncIterable<unknown> | DataLoader<any, TensorBatch>;

export interface TrainerOptions<B = Batch> {
  model: Module;
  /** task API: the run's settings */
  trainingConfig?: TrainingConfig;
  /** task API: what is learned (default: inferred from the first batch, and printed) */
  taskSpec?: TaskSpec;
  /** step API: the batch source and the nanoGPT-style settings */
  data?: BatchSource<B>;
  args?: z.input<typeof TrainArgs>;
  /** step API: default model.loss(batch.x, batch.y) */
  loss?: LossFn<B>;
  /** default: AdamW over the trainable parameters, weight decay on rank >= 2 tensors only */
  optimizer?: Optimizer;
  /** tokens in a batch, for tokens/s (default: batch.x.size) */
  tokens?: (batch: B) => number;
  /** run folder: checkpoints/, metrics.jsonl, loss.svg, metrics_summary.* (null: nothing on disk) */
  outDir?: string | null;
  hooks?: Partial<Hooks<B>>[];
  /** progress display (false: silent) */
  progress?: Progress | false;
  /** step API: continue from the newest checkpoint in outDir/checkpoints */
  resume?: boolean;
  /** aborting it stops the loop after the current step (and checkpoints), as interrupt() does */
  signal?: AbortSignal;
  /** step API, with resume: continue from the checkpoint of this step instead of the newest */
  resumeFrom?: number;
}

export class Trainer<B = Batch> {
  readonly model: Module;
  readonly optimizer: Optimizer;
  /** step API settings (defaults when the task API is used) */
  readonly args: TrainArgs;
  readonly trainingConfig?: TrainingConfig;
  /** batch sampling RNG of the step API (checkpointed) */
  readonly rng: Rng;
  /** the engine running this trainer (its globalStep, profiler, summary, loggers) */
  engine!: GenericTrainer<B>;
  readonly #options: TrainerOptions<B>;
  readonly #progress: Progress | null;
  #interrupted = false;

  constructor(options: TrainerOptions<B>) {
    if (options.hooks !== undefined && !Array.isArray(options.hooks)) throw new ConfigError("hooks must be a list: wrap it in a list: [hooks]");
    if (options.trainingConfig && options.data) throw new ConfigError("Trainer takes trainingConfig (then train(data)) or data + args (then fit()), not both");
    if (options.trainingConfig !== undefined && !(options.trainingConfig instanceof TrainingConfig)) {
      throw new ConfigError("trainingConfig must be a TrainingConfig: new TrainingConfig({ learningRate, batchSize, epochs, ... })");
    }
    this.#options = options;
    this.model = options.model;
    this.trainingConfig = options.trainingConfig;
    this.args = TrainArgs.parse(options.args ?? {});
    this.rng = new Rng(this.args.seed + 1);
    const tc = options.trainingConfig;
    this.optimizer = options.optimizer ?? defaultOptimizer(this.model, tc ? { ...this.args, lr: tc.learningRate, weightDecay: tc.weightDecay } : this.args);
    this.#progress = options.progress === false ? null : options.progress ?? new Progress();
    if (options.data) this.engine = this.#stepEngine();
  }

  /** optimizer steps so far */
  get step(): number {
    return this.engine?.globalStep ?? 0;
  }

  /** the RNG dropout draws from during training steps (checkpointed) */
  get dropoutRng(): Rng {
    return this.engine.dropoutRng;
  }

  /** the run's metric records (metrics.jsonl's lines) */
  get metrics(): { records: readonly MetricRecord[] } {
    return { records: this.engine?.loggers.records ?? [] };
  }

  get checkpointDir(): string | null {
    return this.engine?.checkpointDir ?? null;
  }

  /** Asks the loop to stop after the current step, save a checkpoint and return ("interrupt"). */
  interrupt(): void {
    this.#interrupted = true;
    this.engine?.stop("interrupt");
  }

  /** A hook may stop training (reason recorded in result.stoppedBy). */
  stop(reason: "early_stop" | "hook" | "interrupt" = "hook"): void {
    this.engine?.stop(reason);
  }

  get globalStep(): number {
    return this.step;
  }
  get epoch(): number {
    return this.engine?.epoch ?? 0;
  }

  /** Step API: the learning rate at step `it` (nanoGPT's get_lr, or constant). */
  lrAt(it: number): number {
    const a = this.args;
    if (a.schedule === "constant") return a.lr;
    return warmupCosine(it, { lr: a.lr, minLr: a.minLr, warmupSteps: a.warmupIters, decaySteps: a.decayIters ?? a.iters });
  }

  /** Step API: mean loss over `iters` batches of `split` (each batch's mean loss, averaged), without gradients, in eval mode. */
  async evaluate(split: Split, iters: number): Promise<number> {
    const data = this.#options.data!;
    const bs = this.args.batchSize;
    const rng = new Rng((this.args.seed * 7919 + this.step * 31 + (split === "val" ? 1 : 2)) >>> 0);
    const loader: Loader<B> = { *iterate() { for (let i = 0; i < iters; i++) yield data.batch(split, bs, rng); } };
    return (await this.engine.validate([loader], [split]))["val/loss"];
  }

  /** Step API: runs to args.iters steps (or until interrupted, NaN, or early stop). */
  async fit(): Promise<TrainingResult> {
    if (!this.#options.data) throw new ConfigError("fit() is the step API (Trainer({ model, data, args })); with a trainingConfig call train(trainData, valData)");
    const o = this.#options;
    const result = await this.engine.fit({
      trainLoaders: [this.#trainWindows()],
      valLoaders: [this.#valWindows()],
      maxSteps: this.args.iters,
      resumeFrom: o.resume ? (o.outDir ?? undefined) : undefined,
      resumeStep: o.resumeFrom,
      signal: o.signal,
    }).catch((e) => {
      if (o.resume && !o.outDir) throw new ConfigError("[train] nothing to resume: no run folder (outDir)");
      throw e;
    });
    this.#progress?.end();
    return result;
  }

  /** Task API: trains on trainData (a Dataset, array, stream or DataLoader) for trainingConfig.epochs. */
  async train(trainData: TrainData, valData?: TrainData, { resumeFrom, signal }: { resumeFrom?: string; signal?: AbortSignal } = {}): Promise<TrainingResult> {
    const tc = this.trainingConfig;
    if (!tc) throw new ConfigError("train() needs a trainingConfig: new Trainer({ model, trainingConfig: new TrainingConfig({ learningRate, batchSize, epochs }) })");
    const pad = this.#options.taskSpec?.padTokenId ?? tc.padTokenId;
    const toLoader = (d: TrainData, shuffle: boolean) => (d instanceof DataLoader ? d : new DataLoader(d as Dataset, { batchSize: tc.batchSize, shuffle: shuffle && isIndexable(d), seed: tc.randomSeed, padTokenId: pad }));
    const train = toLoader(trainData, true);
    const val = valData ? toLoader(valData, false) : undefined;
    const task = this.#options.taskSpec ?? (await this.#inferTask(train));
    const lossFn = taskLoss(task);
    const batchesPerEpoch = train.length;
    const totalSteps = tc.maxSteps ?? (batchesPerEpoch !== undefined ? Math.ceil((batchesPerEpoch * tc.epochs) / tc.gradientAccumulationSteps) : undefined);
    if (tc.useLrSchedule && totalSteps === undefined) throw new ConfigError("useLrSchedule needs a known run length: set maxSteps (the training data is a stream)");
    const schedule = tc.useLrSchedule
      ? (step: number) => warmupCosine(step, { lr: tc.learningRate, minLr: tc.learningRate / 10, warmupSteps: tc.warmupSteps, decaySteps: totalSteps! })
      : null;
    const loggers = (Array.isArray(tc.logger) ? tc.logger : [tc.logger]).filter((l): l is "jsonl" | "csv" | "html" => ["jsonl", "csv", "html"].includes(l));
    const config = new GenericTrainerConfig({
      trainLoaderConfig: { dataloaderNames: ["train"] },
      valLoaderConfig: val ? { dataloaderNames: ["validation"] } : undefined,
      logScalarsEveryNSteps: tc.loggingInterval,
      gradientAccumulationSteps: tc.gradientAccumulationSteps,
      maxGradNorm: tc.maxGradNorm,
      maxEpochs: tc.epochs,
      maxSteps: tc.maxSteps,
      checkpointEveryNEpochs: tc.checkpointInterval,
      keepLast: tc.keepLast,
      randomSeed: tc.randomSeed,
      outDir: this.#options.outDir ?? undefined,
      loggers: loggers.length ? loggers : ["jsonl"],
      performance: { useAmp: tc.useAmp },
    });
    const hooks: Partial<Hooks<B>>[] = [...(this.#options.hooks ?? [])];
    let early: EarlyStopping | undefined;
    if (tc.earlyStopping) hooks.push((early = new EarlyStopping(tc.earlyStopping)) as Partial<Hooks<B>>);
    if (this.#progress) hooks.push(progressHook(this.#progress, tc.loggingInterval) as Partial<Hooks<B>>);
    this.engine = new GenericTrainer<B>({
      config, model: this.model, optimizers: [this.optimizer], schedulers: [schedule], hooks: hooks as TrainerHooks<never, B>[],
      hookTarget: this, tokens: this.#options.tokens, log: this.#progress ? (line) => this.#progress!.line(line) : false,
    });
    this.engine.setTrainingStep((_t, batch) => lossFn(this.model, batch as TensorBatch));
    if (this.#interrupted) this.engine.stop("interrupt");
    const result = await this.engine.fit({ trainLoaders: [train as unknown as Loader<B>], valLoaders: val ? [val as unknown as Loader<B>] : undefined, resumeFrom, signal });
    if (early?.bestEpoch !== undefined) result.bestEpoch = early.bestEpoch;
    this.#progress?.end();
    return result;
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async #inferTask(train: DataLoader<any, TensorBatch>): Promise<TaskSpec> {
    let first: TensorBatch | undefined;
    for await (const b of train.iterate(0, 0)) {
      first = b;
      break;
    }
    if (!first) throw new ConfigError("the training data is empty");
    const type = inferTask(first);
    for (const t of Object.values(first)) t.dispose();
    const why = { language_modeling: "integer targets shaped like the inputs", classification: "one integer target per row", regression: "float targets" }[type];
    this.#progress?.line(`task: ${type} (inferred from the batch: ${why}; pass taskSpec to choose)`);
    return { type };
  }

  #stepEngine(): GenericTrainer<B> {
    const a = this.args;
    const o = this.#options;
    const config = new GenericTrainerConfig({
      trainLoaderConfig: { dataloaderNames: ["train"] },
      valLoaderConfig: { dataloaderNames: ["val"] },
      logScalarsEveryNSteps: a.logInterval,
      gradientAccumulationSteps: a.gradAccum,
      maxGradNorm: a.gradClip,
      maxSteps: a.iters,
      valEveryNSteps: a.evalInterval,
      checkpointEveryNSteps: a.checkpointInterval,
      checkpointEveryNEpochs: 0,
      randomSeed: a.seed,
      outDir: o.outDir ?? undefined,
    });
    const hooks: Partial<Hooks<B>>[] = [...(o.hooks ?? [])];
    if (a.earlyStopPatience > 0) hooks.push(new EarlyStopping({ patience: a.earlyStopPatience }) as Partial<Hooks<B>>);
    if (this.#progress) hooks.push(stepProgressHook(this.#progress, a) as Partial<Hooks<B>>);
    const engine = new GenericTrainer<B>({
      config, model: this.model, optimizers: [this.optimizer], schedulers: [(step) => this.lrAt(step)], hooks: hooks as TrainerHooks<never, B>[],
      hookTarget: this, tokens: o.tokens, log: this.#progress ? (line) => this.#progress!.line(line) : false,
    });
    const loss = o.loss ?? (defaultLoss as unknown as LossFn<B>);
    engine.setTrainingStep((_t, batch) => loss(this.model, batch));
    engine.attachState({ save: () => ({ rng: this.rng.getState() }), load: (s) => this.rng.setState(s.rng as ReturnType<Rng["getState"]>) });
    return engine;
  }

  /** Endless random training windows, drawn with the Trainer's batch RNG. */
  #trainWindows(): Loader<B> {
    const data = this.#options.data!;
    const bs = this.args.batchSize;
    const rng = this.rng;
    return { prefetch: false, *iterate() { for (;;) yield data.batch("train", bs, rng); } };
  }

  /** evalIters random val windows per evaluation (finalEvalIters at the end), seeded by the step. */
  #valWindows(): Loader<B> {
    const data = this.#options.data!;
    const a = this.args;
    const trainer = this;
    return {
      *iterate(step: number) {
        const n = step === -1 ? a.finalEvalIters : a.evalIters;
        const rng = new Rng((a.seed * 7919 + trainer.step * 31 + 1) >>> 0);
        for (let i = 0; i < n; i++) yield data.batch("val", a.batchSize, rng);
      },
    };
  }
}

/** The default loss and metrics of a task. */
export function taskLoss(task: TaskSpec): (model: Module, batch: TensorBatch) => Tensor | StepOutput {
  if (task.type === "custom" || task.loss) {
    if (!task.loss) throw new ConfigError('TaskSpec type "custom" needs a loss(model, batch)');
    return task.loss;
  }
  const forward = (model: Module, x: Tensor) => {
    const f = (model as Module & { forward?: (x: Tensor) => Tensor }).forward;
    if (typeof f !== "function") throw new ConfigError("the model has no forward(x): pass a TaskSpec with a loss");
    return f.call(model, x);
  };
  const need = (b: TensorBatch) => {
    if (!b.x || !b.y) throw new ConfigError(`task ${task.type} needs batches { x, y } (got ${Object.keys(b).join(", ")}): pass a TaskSpec with a loss`);
    return b as { x: Tensor; y: Tensor };
  };
  const kinds: Record<TaskType, (model: Module, batch: TensorBatch) => StepOutput> = {
    language_modeling: (model, batch) => {
      const { x, y } = need(batch);
      return { loss: ops.crossEntropy(forward(model, x), y) };
    },
    classification: (model, batch) => {
      const { x, y } = need(batch);
      const logits = forward(model, x); // [B, C]
      return { loss: ops.crossEntropy(logits, y), metrics: { accuracy: accuracy(logits, y) } };
    },
    regression: (model, batch) => {
      const { x, y } = need(batch);
      const pred = ops.reshape(forward(model, x), y.shape as number[]);
      const err = ops.sub(pred, y);
      return { loss: ops.mean(ops.mul(err, err)) };
    },
  };
  return kinds[task.type as TaskType];
}

/**
 * Share of rows whose target has the highest logit (ties count as hits), on the device:
 * a hit has ce(target) == logsumexp(logits - max), i.e. d = ce - lse0 == 0.
 */
export function accuracy(logits: Tensor, targets: Tensor): Tensor {
  const m = ops.max(logits, -1, true); // [B, 1]
  const lse0 = ops.log(ops.sum(ops.exp(ops.sub(logits, m)), -1)); // [B]
  const d = ops.sub(ops.crossEntropy(logits, targets, { reduction: "none" }), lse0); // [B], >= 0
  const hit = ops.affine(ops.relu(ops.affine(ops.relu(ops.affine(d, -1e4, 1)), -1, 1)), -1, 1); // min(1, relu(1 - 1e4·d))
  return ops.mean(hit);
}

function progressHook(progress: Progress, every: number): Partial<TrainerHooks<unknown>> {
  return {
    onBatchEnd: (_t, _b, o: BatchOutputs) => {
      if (o.step % every === 0) progress.line(`step ${o.step}  loss ${o.loss.toFixed(4)}  lr ${o.lr.toExponential(2)}  ${o.msPerIter.toFixed(1)} ms/it`);
    },
    onEpochEnd: (_t, epoch, row) => {
      progress.line(`epoch ${epoch + 1}: ` + Object.entries(row).filter(([k]) => k !== "epoch").map(([k, v]) => `${k} ${Number.isInteger(v) ? v : (v as number).toFixed(4)}`).join("  "));
    },
  };
}

function stepProgressHook(progress: Progress, a: TrainArgs): Partial<TrainerHooks<unknown>> {
  return {
    onBatchEnd: (t, _b, o: BatchOutputs) => {
      const deviceBytes = (t as Trainer).optimizer.params[0]?.backend.stats().allocatedBytes;
      progress.update({ step: o.step, total: a.iters, loss: o.loss, tokensPerS: o.tokensPerS, msPerIter: o.msPerIter, lr: o.lr, deviceBytes }, o.step % a.logInterval === 0 || o.step === a.iters);
    },
    onValidationEnd: (t, metrics) => {
      progress.line(`step ${(t as { step: number }).step}: val loss ${metrics["val/loss"].toFixed(4)}`);
    },
  };
}

/** model.loss(x, y): the next-token loss of a language model. */
function defaultLoss(model: Module, batch: Batch): Tensor {
  const lm = model as Module & { loss?: (x: Tensor, y: Tensor) => Tensor };
  if (typeof lm.loss !== "function") throw new ConfigError("[train] the model has no loss(x, y): pass `loss` to the Trainer");
  if (!batch || typeof batch !== "object" || !("x" in batch) || !("y" in batch)) {
    throw new ConfigError("[train] the default loss needs batches { x, y }: pass `loss` to the Trainer for other batch shapes");
  }
  return lm.loss(batch.x, batch.y);
}

function isIndexable(d: unknown): boolean {
  return Array.isArray(d) || (!!d && typeof d === "object" && "get" in d && "length" in d);
}

/** AdamW as nanoGPT configures it, over the trainable parameters: weight decay only on tensors of rank >= 2. */
export function defaultOptimizer(model: Module, args: Pick<TrainArgs, "lr" | "weightDecay" | "beta1" | "beta2" | "eps">): AdamW {
  const params = model.trainableParameters();
  return new AdamW(
    [
      { params: params.filter((p) => p.rank >= 2), weightDecay: args.weightDecay },
      { params: params.filter((p) => p.rank < 2), weightDecay: 0 },
    ],
    { lr: args.lr, betas: [args.beta1, args.beta2], eps: args.eps },
  );
}

/**
 * The simplest case in one call: trains `model` on `data` (a dataset, or { train, val }) with a
 * TrainingConfig's keys. Also accepts the old helper's parameter names (n_epochs,
 * gradient_clip_norm, learning_rate, ...), mapped to the new ones with a one-time notice.
 */
export async function trainModel(
  model: Module,
  data: TrainData | { train: TrainData; val?: TrainData },
  config: Record<string, unknown>,
  options: { taskSpec?: TaskSpec; hooks?: Partial<Hooks<TensorBatch>>[]; outDir?: string; progress?: false } = {},
): Promise<TrainingResult> {
  const trainingConfig = new TrainingConfig(config as never, { legacy: true });
  const split = data && typeof data === "object" && "train" in data && !Array.isArray(data) ? (data as { train: TrainData; val?: TrainData }) : { train: data as TrainData };
  const trainer = new Trainer<TensorBatch>({ model, trainingConfig, taskSpec: options.taskSpec, hooks: options.hooks, outDir: options.outDir, progress: options.progress });
  return trainer.train(split.train, split.val);
}
