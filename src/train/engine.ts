// GenericTrainer: kiln's one training loop. Named train loaders mixed by a sampling strategy,
// several optimizers (each over its own parameters; a map says which steps for which loader),
// a training step the user writes (trainer, batch, batchIdx, dataloaderIdx, dataloaderName) →
// { loss, metrics }, and around it: gradient accumulation, global-norm clipping, per-optimizer lr
// schedules, an optional dynamic loss scaler, validation, checkpoints with exact mid-epoch resume
// (every loader's position, the sampler, every optimizer, the RNG streams), hooks, per-phase
// profiling per loader, metrics (JSONL, CSV, HTML) and the TrainingResult. The Trainer (one
// model, one dataset, a task) and `kiln train` run on it. Process signals are the caller's: pass
// an AbortSignal. Lightning's LightningModule/Trainer split, as a step function and a config.
// Longer than the house's 500 lines on purpose: fit() is the one loop and reads top-down in one
// place; the parts that stand alone live beside it (engine_config, sampling, profiler, loggers, amp).

import { join } from "node:path";
import { mkdir, readFile } from "node:fs/promises";
import type { Module } from "../nn/module.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { asyncScope, dispose } from "../tensor/memory.ts";
import { Rng, withRng } from "../tensor/random.ts";
import { noGrad } from "../autograd/tape.ts";
import { withAutocast, withTraining } from "../tensor/mode.ts";
import type { Optimizer } from "../optim/optimizer.ts";
import { gradNormSq } from "../optim/clip.ts";
import { hasCheckpoint, loadCheckpoint, saveCheckpoint } from "../io/checkpoint.ts";
import { ConfigError } from "./config.ts";
import { GradScaler, ampUnavailable } from "./amp.ts";
import { EpochSampler, type SamplerState } from "./sampling.ts";
import { MetricsSummary, type StoppedBy, type SummaryRow, type TrainingResult } from "./result.ts";
import type { BatchOutputs, TrainerHooks } from "./hooks.ts";
import { GenericTrainerConfig } from "./engine_config.ts";
import { Profiler } from "./profiler.ts";
import { RunLoggers, type MetricRecord } from "./loggers.ts";

export { GenericTrainerConfig } from "./engine_config.ts";

/** What a step function returns. */
export interface StepOutput {
  loss: Tensor;
  metrics?: Record<string, Tensor | number>;
}

export type TrainingStep<B = unknown> = (trainer: GenericTrainer<B>, batch: B, batchIdx: number, dataloaderIdx: number, dataloaderName: string) => StepOutput | Tensor;

/** Anything the engine can take batches from: a DataLoader, or an array of batches. */
export interface Loader<B> {
  /** options.numWorkers: performance.dataloaderNumWorkers, for loaders that load in worker threads (DataLoader) */
  iterate(epoch: number, skip: number, options?: { numWorkers?: number }): AsyncIterable<B> | Iterable<B>;
  readonly length?: number;
  /**
   * false: do not fetch the next batch ahead. For loaders whose resume state is an RNG rather than
   * a position (a batch fetched ahead would already have moved it when a checkpoint is written).
   */
  readonly prefetch?: boolean;
}

/** lr of optimizer i at optimizer step `step` (0-based). */
export type LrSchedule = (step: number) => number;

export interface FitOptions<B> {
  trainLoaders: (Loader<B> | B[])[];
  valLoaders?: (Loader<B> | B[])[];
  maxEpochs?: number;
  maxSteps?: number;
  /** a run folder (its checkpoints/) or a checkpoints folder to continue from */
  resumeFrom?: string;
  /** with resumeFrom: the checkpoint of this step instead of the newest */
  resumeStep?: number;
  signal?: AbortSignal;
}

export interface GenericTrainerOptions<B> {
  config: GenericTrainerConfig;
  model: Module;
  optimizers: Optimizer[];
  /** one per optimizer (null: constant lr) */
  schedulers?: (LrSchedule | null)[];
  hooks?: TrainerHooks<never, B>[];
  /** the object hooks receive as `trainer` (default: this engine) */
  hookTarget?: unknown;
  /** tokens in a batch, for tokens/s (default: the size of batch.x when it is a tensor) */
  tokens?: (batch: B) => number;
  /** where notices and the profile summary go (false: silent) */
  log?: ((line: string) => void) | false;
}

type Pending<B> = { step: number; lr: number; skipped: boolean; losses: Tensor[]; metrics: Record<string, Tensor | number>[]; gradNormSq: Tensor | null; batch: B; info: { batchIdx: number; dataloaderIdx: number } };

export class GenericTrainer<B = unknown> {
  readonly config: GenericTrainerConfig;
  readonly model: Module;
  readonly optimizers: Optimizer[];
  readonly schedulers: (LrSchedule | null)[];
  /** the RNG dropout draws from during training steps (checkpointed; Rng.global is never written) */
  readonly dropoutRng: Rng;
  readonly profiler: Profiler;
  readonly loggers: RunLoggers;
  globalStep = 0;
  epoch = 0;
  /** losses read so far in this call */
  readonly lossHistory: number[] = [];
  readonly gradNormHistory: number[] = [];
  readonly summary = new MetricsSummary();
  /** batches drawn per train loader in this call */
  readonly samplingCounts: Record<string, number> = {};
  readonly scaler: GradScaler | null;
  ampEnabled = false;
  #stopReason: StoppedBy | null = null;
  #trainingStep: TrainingStep<B> | null = null;
  #validationStep: TrainingStep<B> | null = null;
  readonly #hooks: TrainerHooks<never, B>[];
  readonly #hookTarget: unknown;
  readonly #tokens: (batch: B) => number;
  readonly #log: ((line: string) => void) | null;
  #names: string[] = [];
  #validatedAt = -1;
  #windowShift = 0;
  /** ms spent validating and writing checkpoints in this call */
  evalMs = 0;
  checkpointMs = 0;

  constructor(options: GenericTrainerOptions<B>) {
    if (!(options.config instanceof GenericTrainerConfig)) {
      if (options.config && typeof options.config === "object" && !("trainLoaderConfig" in options.config)) {
        throw new ConfigError("GenericTrainer needs config.trainLoaderConfig: a MultiDataLoaderConfig naming the train loaders (new MultiDataLoaderConfig({ dataloaderNames: [...] }))");
      }
      throw new ConfigError("GenericTrainer config must be a GenericTrainerConfig (new GenericTrainerConfig({ trainLoaderConfig, ... }))");
    }
    if (!Array.isArray(options.optimizers)) throw new ConfigError("GenericTrainer optimizers must be a list: wrap it in a list: [optimizer]");
    if (options.optimizers.length === 0) throw new ConfigError("GenericTrainer needs at least one optimizer");
    const seen = new Set<Tensor>();
    for (const opt of options.optimizers) {
      for (const p of opt.params) {
        if (seen.has(p)) throw new ConfigError(`a parameter (${p.name ?? p.describe()}) belongs to two optimizers: each optimizer owns its parameters`);
        seen.add(p);
      }
    }
    if (options.hooks !== undefined && !Array.isArray(options.hooks)) throw new ConfigError("hooks must be a list: wrap it in a list: [hooks]");
    this.config = options.config;
    this.model = options.model;
    this.optimizers = options.optimizers;
    this.schedulers = options.schedulers ?? options.optimizers.map(() => null);
    if (this.schedulers.length !== this.optimizers.length) throw new ConfigError(`${this.schedulers.length} schedulers for ${this.optimizers.length} optimizers: give one per optimizer (null for none)`);
    this.#hooks = options.hooks ?? [];
    this.#hookTarget = options.hookTarget ?? this;
    this.#tokens = options.tokens ?? defaultTokens;
    this.#log = options.log === false ? null : options.log ?? ((line) => console.log(line));
    this.dropoutRng = new Rng(this.config.randomSeed + 3);
    this.profiler = new Profiler(this.config.profileTraining);
    this.loggers = new RunLoggers(this.config.outDir ?? null, this.config.loggers);
    const useScaler = this.config.performance.useAmp || this.config.performance.lossScaling;
    this.scaler = useScaler ? new GradScaler() : null;
  }

  /** The training step: (trainer, batch, batchIdx, dataloaderIdx, dataloaderName) → { loss, metrics? } or a loss tensor. */
  setTrainingStep(fn: TrainingStep<B>): void {
    checkStepSignature(fn, "trainingStep");
    this.#trainingStep = fn;
  }

  /** The validation step (same signature); default: the training step under noGrad in eval mode. */
  setValidationStep(fn: TrainingStep<B>): void {
    checkStepSignature(fn, "validationStep");
    this.#validationStep = fn;
  }

  /** Asks the loop to stop after the current step (a checkpoint is written when there is a run folder). */
  stop(reason: "early_stop" | "hook" | "interrupt" = "hook"): void {
    this.#stopReason ??= reason;
  }

  get stopping(): boolean {
    return this.#stopReason !== null;
  }

  /** The lr optimizer i uses at the current step. */
  lrOf(i = 0): number {
    const s = this.schedulers[i];
    return s ? s(this.globalStep) : this.optimizers[i].lr;
  }

  get checkpointDir(): string | null {
    return this.config.outDir ? join(this.config.outDir, "checkpoints") : null;
  }

  async fit(options: FitOptions<B>): Promise<TrainingResult> {
    if (!this.#trainingStep) throw new ConfigError("no training step: call trainer.setTrainingStep((trainer, batch, batchIdx, dataloaderIdx, dataloaderName) => ({ loss }))");
    const c = this.config;
    const trainLoaders = asLoaders<B>(options.trainLoaders, "trainLoaders");
    const valLoaders: Loader<B>[] = options.valLoaders ? asLoaders<B>(options.valLoaders, "valLoaders") : [];
    this.#names = c.trainLoaderConfig.dataloaderNames;
    if (trainLoaders.length !== this.#names.length) {
      throw new ConfigError(`${trainLoaders.length} train loaders for ${this.#names.length} names in trainLoaderConfig.dataloaderNames (${this.#names.join(", ")})`);
    }
    const valNames = c.valLoaderConfig?.dataloaderNames ?? valLoaders.map((_, i) => (valLoaders.length === 1 ? "validation" : `val_${i}`));
    if (valLoaders.length && valNames.length !== valLoaders.length) throw new ConfigError(`${valLoaders.length} val loaders for ${valNames.length} names in valLoaderConfig.dataloaderNames`);
    for (const name of Object.keys(c.optimizerLoaders ?? {})) {
      if (!this.#names.includes(name)) throw new ConfigError(`optimizerLoaders names "${name}", which is not a train loader (${this.#names.join(", ")})`);
    }
    const maxEpochs = options.maxEpochs ?? c.maxEpochs ?? (options.maxSteps ?? c.maxSteps ? Infinity : 1);
    const maxSteps = options.maxSteps ?? c.maxSteps ?? Infinity;
    const backend = this.optimizers[0].params[0]?.backend;
    if (c.performance.useAmp && backend) {
      const why = ampUnavailable(backend);
      this.ampEnabled = why === null;
      if (why) this.#log?.(`AMP off, training in f32: ${why}`);
    }

    // resume: weights, optimizers, RNG streams, scaler, and where each loader and the sampler were
    let loaderEpochs = trainLoaders.map(() => 0);
    let consumed = trainLoaders.map(() => 0);
    let samplerState: SamplerState | null = null;
    let accumulated = 0;
    let previous: MetricRecord[] = [];
    let resumedEpoch: { losses: number[]; metrics: Record<string, number[]> } | null = null;
    if (options.resumeFrom !== undefined) {
      const dir = (await hasCheckpoint(join(options.resumeFrom, "checkpoints"))) ? join(options.resumeFrom, "checkpoints") : options.resumeFrom;
      if (!(await hasCheckpoint(dir))) throw new ConfigError(`nothing to resume: no checkpoint in ${options.resumeFrom}`);
      const state = await loadCheckpoint(dir, { model: this.model, optimizers: this.optimizers, step: options.resumeStep });
      const e = state.engine as EngineState;
      this.globalStep = state.step;
      this.epoch = e.epoch;
      loaderEpochs = e.loaderEpochs;
      consumed = e.consumed;
      samplerState = e.sampler;
      accumulated = 0;
      this.dropoutRng.setState(e.dropoutRng);
      if (e.scaler && this.scaler) this.scaler.loadStateDict(e.scaler);
      for (const r of e.summary) this.summary.add(r);
      if (e.sampler && e.epochLosses) resumedEpoch = { losses: e.epochLosses, metrics: e.epochMetrics ?? {} };
      await this.#resumeHook(state);
      if (this.config.outDir) previous = await readPrevious(this.config.outDir, this.globalStep);
    }
    await this.loggers.open(previous);

    const t0 = performance.now();
    let lastCheckpoint: string | undefined;
    let tokens = 0;
    const deferReads = !backend?.downloadSync;
    const pending: Pending<B>[] = [];
    let window = { start: performance.now(), steps: 0, tokens: 0, losses: [] as number[] };
    let lastWindowLosses: number[] = [];
    let finalVal: Record<string, number> | undefined;
    let bestVal = Infinity;
    let bestEpoch: number | undefined;
    let epochLosses: number[] = resumedEpoch?.losses ?? [];
    let epochMetrics: Record<string, number[]> = resumedEpoch?.metrics ?? {};

    await this.#emit("onTrainBegin", options.trainLoaders, options.valLoaders);

    const flushPending = async () => {
      for (const p of pending.splice(0)) {
        try {
          let loss = 0;
          for (const l of p.losses) loss += (await l.data())[0];
          loss /= p.losses.length;
          const metrics = await meanMetrics(p.metrics);
          const gradNorm = p.gradNormSq ? Math.sqrt((await p.gradNormSq.data())[0]) : undefined;
          this.lossHistory.push(loss);
          window.losses.push(loss);
          epochLosses.push(loss);
          for (const [k, v] of Object.entries(metrics)) (epochMetrics[k] ??= []).push(v);
          if (gradNorm !== undefined) this.gradNormHistory.push(gradNorm);
          if (!Number.isFinite(loss) && !p.skipped) {
            this.#stopReason = "nan";
            const where = lastCheckpoint ?? (this.checkpointDir && (await hasCheckpoint(this.checkpointDir)) ? this.checkpointDir : undefined);
            this.#log?.(`[train] loss became ${loss} at step ${p.step}: stopping. ${where ? `The last good checkpoint in ${this.checkpointDir} is kept.` : "No checkpoint was written."}`);
            return;
          }
          window.start += this.#windowShift; // the throughput window counts training only
          this.#windowShift = 0;
          const now = performance.now();
          const isLog = p.step % c.logScalarsEveryNSteps === 0 || p.step === maxSteps;
          const msPerIter = (now - window.start) / Math.max(window.steps, 1);
          const rate = (window.tokens * 1000) / Math.max(now - window.start, 1e-6);
          const name = this.#names[p.info.dataloaderIdx];
          const outputs: BatchOutputs = { step: p.step, loss, lr: p.lr, metrics, gradNorm, msPerIter, tokensPerS: rate, batchIdx: p.info.batchIdx, dataloaderIdx: p.info.dataloaderIdx, dataloaderName: name };
          await this.#emit("onBatchEnd", p.batch, outputs);
          const record: MetricRecord = { step: p.step, loss, lr: p.lr, ...metrics };
          if (gradNorm !== undefined) record.grad_norm = gradNorm;
          if (isLog) {
            Object.assign(record, { tokens_per_s: Math.round(rate), ms_per_iter: +msPerIter.toFixed(3), ...this.profiler.window() });
            lastWindowLosses = window.losses;
            window = { start: performance.now(), steps: 0, tokens: 0, losses: [] };
          }
          if (c.valEveryNSteps > 0 && p.step % c.valEveryNSteps === 0 && p.step < maxSteps && valLoaders.length) {
            const val = await this.validate(valLoaders, valNames);
            Object.assign(record, { val_loss: val["val/loss"] });
            finalVal = val;
            await this.#emit("onValidationEnd", val);
          }
          await this.loggers.log(record);
          const ckpt = this.checkpointDir && ((c.checkpointEveryNSteps > 0 && p.step % c.checkpointEveryNSteps === 0) || (this.#stopReason && p.step === this.globalStep));
          if (ckpt) lastCheckpoint = await this.#checkpoint({ loaderEpochs, consumed, sampler: sampler.state, epochLosses, epochMetrics });
        } finally {
          disposePending(p);
        }
        if (this.#stopReason === "nan") return;
      }
    };

    let sampler = new EpochSampler(c.trainLoaderConfig, c.randomSeed, this.epoch);
    let midEpoch = false;
    epochs: while (this.epoch < maxEpochs && this.globalStep < maxSteps && !this.#stopReason) {
      sampler = new EpochSampler(c.trainLoaderConfig, c.randomSeed, this.epoch);
      if (samplerState) sampler.state = samplerState;
      const resumedMidEpoch = samplerState !== null;
      samplerState = null;
      if (!resumedMidEpoch) {
        consumed = consumed.map(() => 0);
        epochLosses = [];
        epochMetrics = {};
      }
      midEpoch = true;
      await this.#emit("onEpochBegin", this.epoch);
      const workers = { numWorkers: c.performance.dataloaderNumWorkers };
      const iterators = trainLoaders.map((l, i) => prefetching(l.iterate(loaderEpochs[i], consumed[i], workers), l.prefetch !== false));
      const micro: { losses: Tensor[]; metrics: Record<string, Tensor | number>[]; loaders: Set<number> } = { losses: [], metrics: [], loaders: new Set() };
      let lastBatch: { batch: B; batchIdx: number; dataloaderIdx: number } | null = null;

      try {
        while (true) {
          if (this.signalStop(options.signal)) break;
          const profiled = this.profiler.enabled && (this.globalStep + 1) % c.logScalarsEveryNSteps === 0;
          const tData = performance.now();
          const i = sampler.next();
          if (i === null) break;
          let got = await iterators[i].next();
          if (got.done) {
            const what = sampler.exhausted(i);
            if (what === "end") break;
            if (what === "skip") continue;
            loaderEpochs[i]++;
            consumed[i] = 0;
            await iterators[i].return();
            iterators[i] = prefetching(trainLoaders[i].iterate(loaderEpochs[i], 0, workers), trainLoaders[i].prefetch !== false);
            got = await iterators[i].next();
            if (got.done) throw new ConfigError(`train loader "${this.#names[i]}" gives no batches`);
          }
          const batch = got.value;
          const batchIdx = consumed[i]++;
          const name = this.#names[i];
          this.samplingCounts[name] = (this.samplingCounts[name] ?? 0) + 1;
          const nTokens = this.#tokens(batch);
          tokens += nTokens;
          window.tokens += nTokens;
          this.profiler.add(name, "data", performance.now() - tData);

          // forward + backward of one micro-batch, in its own memory scope, dropout from our stream
          const out = await withAutocast(this.ampEnabled, () => withRng(this.dropoutRng, () => asyncScope(async () => {
            let t = performance.now();
            const result = toStepOutput(this.#trainingStep!(this, batch, batchIdx, i, name), "trainingStep");
            if (profiled) await backend?.flush();
            this.profiler.add(name, "forward", performance.now() - t);
            t = performance.now();
            if (c.automaticOptimization) {
              let l = c.gradientAccumulationSteps > 1 ? result.loss.mul(1 / c.gradientAccumulationSteps) : result.loss;
              if (this.scaler) l = this.scaler.scaleLoss(l);
              l.backward();
            }
            if (profiled) await backend?.flush();
            this.profiler.add(name, "backward", performance.now() - t);
            return { loss: result.loss.detach(), metrics: detachMetrics(result.metrics) };
          })));
          micro.losses.push(out.loss);
          micro.metrics.push(out.metrics);
          micro.loaders.add(i);
          lastBatch = { batch, batchIdx, dataloaderIdx: i };
          accumulated++;
          if (accumulated < c.gradientAccumulationSteps) continue;

          await this.#optimizerStep(micro, lastBatch, pending, name, profiled, backend);
          accumulated = 0;
          micro.losses = [];
          micro.metrics = [];
          micro.loaders = new Set();
          window.steps++;
          const must = (n: number) => n > 0 && this.globalStep % n === 0;
          const readNow = !deferReads || must(c.logScalarsEveryNSteps) || must(c.valEveryNSteps) || must(c.checkpointEveryNSteps) || this.stopping || this.globalStep >= maxSteps || this.signalStop(options.signal);
          if (readNow) await flushPending();
          if (this.#stopReason || this.globalStep >= maxSteps) break epochs;
        }
      } finally {
        // ends the loaders' epochs early (stop, abort, error): their worker threads end with them
        await Promise.all(iterators.map((it) => it.return()));
      }
      // an epoch that ends inside an accumulation window still steps on what it has
      if (micro.losses.length && lastBatch && !this.#stopReason) {
        await this.#optimizerStep(micro, lastBatch, pending, this.#names[lastBatch.dataloaderIdx], false, backend);
        accumulated = 0;
        window.steps++;
      }
      await flushPending();
      if (this.#stopReason || this.signalStop(options.signal)) break;
      // epoch end: validation, the summary row, hooks, checkpoint
      const row = await this.#epochEnd(valLoaders, valNames, epochLosses, epochMetrics);
      if (row.val_loss_raw !== undefined) {
        finalVal = { "val/loss": row.val_loss_raw };
        if (row.val_loss_raw < bestVal) {
          bestVal = row.val_loss_raw;
          bestEpoch = this.epoch + 1;
        }
        delete row.val_loss_raw;
      }
      this.summary.add(row);
      await this.#emit("onEpochEnd", this.epoch, row);
      this.epoch++;
      midEpoch = false;
      loaderEpochs = loaderEpochs.map((e) => e + 1);
      consumed = consumed.map(() => 0);
      if (this.checkpointDir && c.checkpointEveryNEpochs > 0 && this.epoch % c.checkpointEveryNEpochs === 0) {
        lastCheckpoint = await this.#checkpoint({ loaderEpochs, consumed, sampler: null });
      }
    }
    await flushPending();
    if (this.signalStop(options.signal)) this.#stopReason ??= "interrupt";
    const stoppedBy: StoppedBy = this.#stopReason ?? "done";
    // a run that ended mid-epoch (steps, interrupt) still validates and checkpoints where it stopped
    if ((stoppedBy === "done" || stoppedBy === "early_stop") && valLoaders.length && this.#validatedAt !== this.globalStep) {
      finalVal = await this.validate(valLoaders, valNames, true);
      bestVal = Math.min(bestVal, finalVal["val/loss"]);
      await this.loggers.log({ step: this.globalStep, val_loss: finalVal["val/loss"], final: true });
      await this.#emit("onValidationEnd", finalVal);
    }
    if (this.checkpointDir && stoppedBy !== "nan" && stepOf(lastCheckpoint) !== this.globalStep) {
      lastCheckpoint = await this.#checkpoint({ loaderEpochs, consumed, sampler: midEpoch ? sampler.state : null, epochLosses, epochMetrics });
    }
    await this.loggers.close(this.summary, this.lossHistory, this.gradNormHistory, this.samplingCounts);
    const trainingTime = (performance.now() - t0) / 1000;
    const lastWindow = window.losses.length ? window.losses : lastWindowLosses;
    const finalLoss = lastWindow.length ? lastWindow.reduce((a, b) => a + b, 0) / lastWindow.length : NaN;
    const finalValLoss = finalVal?.["val/loss"];
    const result: TrainingResult = {
      steps: this.globalStep, epochs: this.epoch, stoppedBy, lossHistory: this.lossHistory, finalLoss, finalValLoss,
      bestValLoss: Number.isFinite(bestVal) ? bestVal : undefined,
      finalPerplexity: Math.exp(finalValLoss ?? finalLoss), trainingTime,
      tokensPerS: tokens / Math.max(trainingTime - (this.evalMs + this.checkpointMs) / 1000, 1e-9),
      evalSeconds: this.evalMs / 1000, checkpointSeconds: this.checkpointMs / 1000,
      metricsSummary: this.summary, bestEpoch, gradNormHistory: this.gradNormHistory, ampEnabled: this.ampEnabled, checkpointPath: lastCheckpoint,
    };
    if (this.profiler.enabled && this.globalStep > 0) this.#log?.(this.profiler.summary());
    await this.#emit("onTrainEnd", result);
    return result;
  }

  /**
   * Mean loss (and metrics) over every batch of every val loader, without gradients, in eval mode:
   * "val/loss" over all batches, "val/<name>/loss" per loader when there are several.
   */
  async validate(loaders: Loader<B>[], names: string[], final = false): Promise<Record<string, number>> {
    const t0 = performance.now();
    try {
      return await this.#validate(loaders, names, final);
    } finally {
      this.#excluded("eval", performance.now() - t0);
    }
  }

  /** Time spent validating or checkpointing: counted apart, and left out of the throughput window. */
  #excluded(what: "eval" | "checkpoint", ms: number): void {
    if (what === "eval") this.evalMs += ms;
    else this.checkpointMs += ms;
    this.#windowShift += ms;
  }

  async #validate(loaders: Loader<B>[], names: string[], final: boolean): Promise<Record<string, number>> {
    this.#validatedAt = this.globalStep;
    const step = this.#validationStep ?? this.#trainingStep!;
    const rng = new Rng(((this.config.randomSeed >>> 0) * 7919 + this.globalStep * 31 + 1) >>> 0);
    const perLoader: { losses: Tensor[]; metrics: Record<string, Tensor | number>[] }[] = [];
    try {
      for (const [i, loader] of loaders.entries()) {
        const acc = { losses: [] as Tensor[], metrics: [] as Record<string, Tensor | number>[] };
        perLoader.push(acc);
        let batchIdx = 0;
        for await (const batch of loader.iterate(final ? -1 : this.globalStep, 0, { numWorkers: this.config.performance.dataloaderNumWorkers })) {
          const out = await withAutocast(this.ampEnabled, () => withTraining(false, () => withRng(rng, () => asyncScope(async () => noGrad(() => {
            const r = toStepOutput(step(this, batch, batchIdx++, i, names[i]), "validationStep");
            return { loss: r.loss, metrics: r.metrics ?? {} };
          })))));
          dispose(batch);
          acc.losses.push(out.loss);
          acc.metrics.push(out.metrics);
        }
      }
      const result: Record<string, number> = {};
      let total = 0;
      let count = 0;
      const allMetrics: Record<string, number>[] = [];
      for (const [i, acc] of perLoader.entries()) {
        let sum = 0;
        for (const l of acc.losses) sum += (await l.data())[0];
        if (loaders.length > 1 && acc.losses.length) result[`val/${names[i]}/loss`] = sum / acc.losses.length;
        total += sum;
        count += acc.losses.length;
        allMetrics.push(...(await Promise.all(acc.metrics.map((m) => meanMetrics([m])))));
      }
      if (count === 0) throw new ConfigError("the validation loaders gave no batches");
      result["val/loss"] = total / count;
      const sums: Record<string, number> = {};
      for (const m of allMetrics) for (const [k, v] of Object.entries(m)) sums[k] = (sums[k] ?? 0) + v;
      for (const [k, v] of Object.entries(sums)) result[`val/${k}`] = v / allMetrics.length;
      return result;
    } finally {
      for (const acc of perLoader) dispose(acc);
    }
  }

  /** Whether an abort was requested (records it as an interrupt). */
  signalStop(signal?: AbortSignal): boolean {
    if (signal?.aborted) this.#stopReason ??= "interrupt";
    return this.#stopReason === "interrupt";
  }

  /** Clip, schedule, step every optimizer mapped to the window's loaders (or all), zero all grads. */
  async #optimizerStep(micro: { losses: Tensor[]; metrics: Record<string, Tensor | number>[]; loaders: Set<number> }, last: { batch: B; batchIdx: number; dataloaderIdx: number }, pending: Pending<B>[], name: string, profiled: boolean, backend: { flush(): Promise<void> } | undefined): Promise<void> {
    const c = this.config;
    const t = performance.now();
    const map = c.optimizerLoaders;
    const stepping = map ? [...new Set([...micro.loaders].flatMap((i) => map[this.#names[i]] ?? []))] : this.optimizers.map((_, i) => i);
    let normSq: Tensor | null = null;
    let skipped = false;
    if (c.automaticOptimization) {
      const params = stepping.flatMap((i) => this.optimizers[i].params);
      let finite = true;
      if (this.scaler) {
        const r = await this.scaler.unscale(params);
        finite = r.finite;
        normSq = r.gradNormSq;
      } else if (c.maxGradNorm > 0 && params.some((p) => p.grad)) {
        normSq = gradNormSq(params);
      }
      skipped = !finite;
      if (finite) {
        for (const i of stepping) {
          const opt = this.optimizers[i];
          opt.lr = this.lrOf(i);
          if (c.maxGradNorm > 0 && normSq) opt.step({ gradNormSq: normSq, maxNorm: c.maxGradNorm });
          else opt.step();
        }
      }
      this.scaler?.update(finite);
      for (const opt of this.optimizers) opt.zeroGrad();
    }
    if (profiled) await backend?.flush();
    this.profiler.add(name, "optimizer", performance.now() - t);
    const lr = this.lrOf(0);
    this.globalStep++;
    pending.push({ step: this.globalStep, lr, skipped, losses: micro.losses, metrics: micro.metrics, gradNormSq: normSq, batch: last.batch, info: last });
    this.profiler.step();
  }

  async #epochEnd(valLoaders: Loader<B>[], valNames: string[], losses: number[], metrics: Record<string, number[]>): Promise<SummaryRow & { val_loss_raw?: number }> {
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);
    const row: SummaryRow & { val_loss_raw?: number } = { epoch: this.epoch + 1, step: this.globalStep };
    if (losses.length) {
      row["train/loss"] = mean(losses);
      row["train/perplexity"] = Math.exp(row["train/loss"]);
    }
    for (const [k, v] of Object.entries(metrics)) row[`train/${k}`] = mean(v);
    if (valLoaders.length) {
      const val = await this.validate(valLoaders, valNames);
      row["val/loss"] = val["val/loss"];
      row["val/perplexity"] = Math.exp(val["val/loss"]);
      for (const [k, v] of Object.entries(val)) if (k !== "val/loss") row[k] = v;
      row.val_loss_raw = val["val/loss"];
      await this.loggers.log({ step: this.globalStep, epoch: this.epoch + 1, val_loss: val["val/loss"] });
      await this.#emit("onValidationEnd", val);
    }
    row["train/learning_rate"] = this.lrOf(0);
    return row;
  }

  async #checkpoint(where: { loaderEpochs: number[]; consumed: number[]; sampler: SamplerState | null; epochLosses?: number[]; epochMetrics?: Record<string, number[]> }): Promise<string> {
    const engine: EngineState = {
      epoch: this.epoch, loaderEpochs: where.loaderEpochs, consumed: where.consumed, sampler: where.sampler,
      dropoutRng: this.dropoutRng.getState(), scaler: this.scaler?.stateDict() ?? null, summary: this.summary.rows,
      ...(where.sampler ? { epochLosses: where.epochLosses, epochMetrics: where.epochMetrics } : {}),
    };
    const t0 = performance.now();
    await mkdir(this.checkpointDir!, { recursive: true });
    const path = await saveCheckpoint(this.checkpointDir!, {
      model: this.model, optimizers: this.optimizers, keep: this.config.keepLast,
      state: { step: this.globalStep, engine, ...this.extraState() },
    });
    this.#excluded("checkpoint", performance.now() - t0);
    await this.#emit("onCheckpoint", path);
    return path;
  }

  /** More state to checkpoint (subclasses and adapters: e.g. a batch RNG). */
  protected extraState(): Record<string, unknown> {
    return this.#extra?.save() ?? {};
  }

  #extra: { save(): Record<string, unknown>; load(state: Record<string, unknown>): void } | null = null;
  /** Adds state an adapter keeps in every checkpoint and gets back on resume. */
  attachState(extra: { save(): Record<string, unknown>; load(state: Record<string, unknown>): void }): void {
    this.#extra = extra;
  }

  async #resumeHook(state: Record<string, unknown>): Promise<void> {
    this.#extra?.load(state);
  }

  async #emit<K extends keyof TrainerHooks>(name: K, ...args: unknown[]): Promise<void> {
    for (const h of this.#hooks) await (h[name] as ((...a: unknown[]) => unknown) | undefined)?.call(h, this.#hookTarget, ...args);
  }
}

interface EngineState {
  epoch: number;
  loaderEpochs: number[];
  consumed: number[];
  sampler: SamplerState | null;
  dropoutRng: { s: number[]; spare: number | null };
  scaler: { scale: number; growthTracker: number } | null;
  summary: SummaryRow[];
  /** mid-epoch: the epoch's step losses and metrics so far (its summary row covers the whole epoch) */
  epochLosses?: number[];
  epochMetrics?: Record<string, number[]>;
}

function checkStepSignature(fn: unknown, what: string): void {
  if (typeof fn !== "function") throw new ConfigError(`${what} must be a function`);
  if (fn.length === 1) {
    throw new ConfigError(`${what} takes (trainer, batch, batchIdx, dataloaderIdx, dataloaderName): the one-argument form (batch) is gone; add the parameters and use trainer.model`);
  }
}

function asLoaders<B>(loaders: unknown, what: string): Loader<B>[] {
  if (!Array.isArray(loaders)) throw new ConfigError(`${what} must be a list: wrap it in a list: [loader]`);
  return loaders.map((l, i) => {
    if (Array.isArray(l)) return { length: l.length, iterate: (_e: number, skip: number) => l.slice(skip) } as Loader<B>;
    if (!l || typeof (l as Loader<B>).iterate !== "function") throw new ConfigError(`${what}[${i}] is not a loader (a DataLoader or an array of batches)`);
    return l as Loader<B>;
  });
}

/**
 * An iterator that starts fetching the next batch as soon as one is handed out (overlaps data
 * loading with the step); return() ends the source (its finally blocks: worker threads, files).
 */
function prefetching<B>(source: AsyncIterable<B> | Iterable<B>, ahead_ = true): { next(): Promise<IteratorResult<B>>; return(): Promise<void> } {
  const it = Symbol.asyncIterator in source ? (source as AsyncIterable<B>)[Symbol.asyncIterator]() : toAsync((source as Iterable<B>)[Symbol.iterator]());
  let ahead: Promise<IteratorResult<B>> | null = null;
  const close = async () => {
    const pending = ahead;
    ahead = null;
    const r = await pending?.catch(() => null);
    if (r && !r.done) dispose(r.value);
    await it.return?.()?.catch?.(() => {});
  };
  if (!ahead_) return { next: () => it.next(), return: close };
  return {
    next() {
      const now = ahead ?? it.next();
      ahead = null;
      return now.then((r) => {
        if (!r.done) ahead = it.next();
        return r;
      });
    },
    return: close,
  };
}

function toAsync<B>(it: Iterator<B>): AsyncIterator<B> {
  return { next: async () => it.next() };
}

function toStepOutput(out: StepOutput | Tensor, what: string): StepOutput {
  if (out && typeof out === "object" && "loss" in out && !("shape" in out)) return out;
  if (out && typeof out === "object" && "shape" in out) return { loss: out as Tensor };
  throw new ConfigError(`${what} must return { loss } or a loss tensor`);
}

function detachMetrics(m: Record<string, Tensor | number> | undefined): Record<string, Tensor | number> {
  return Object.fromEntries(Object.entries(m ?? {}).map(([k, v]) => [k, typeof v === "number" ? v : v.detach()]));
}

async function meanMetrics(list: Record<string, Tensor | number>[]): Promise<Record<string, number>> {
  const sums: Record<string, number> = {};
  const counts: Record<string, number> = {};
  for (const m of list) {
    for (const [k, v] of Object.entries(m)) {
      sums[k] = (sums[k] ?? 0) + (typeof v === "number" ? v : (await v.data())[0]);
      counts[k] = (counts[k] ?? 0) + 1;
    }
  }
  for (const k of Object.keys(sums)) sums[k] /= counts[k];
  return sums;
}

function disposePending(p: Pending<unknown>): void {
  dispose(p.losses);
  dispose(p.metrics);
  if (p.gradNormSq && !p.gradNormSq.disposed) p.gradNormSq.dispose();
  dispose(p.batch);
}

function defaultTokens(batch: unknown): number {
  const x = (batch as { x?: unknown } | null)?.x;
  return x && typeof x === "object" && "size" in x ? (x as Tensor).size : 0;
}

function stepOf(path: string | undefined): number {
  const m = path?.match(/step-(\d+)(\.\d+)?$/);
  return m ? Number(m[1]) : -1;
}

async function readPrevious(outDir: string, upToStep: number): Promise<MetricRecord[]> {
  const text = await readFile(join(outDir, "metrics.jsonl"), "utf8").catch(() => "");
  const out: MetricRecord[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as MetricRecord;
      if (r.step <= upToStep) out.push(r);
    } catch {
      // a line cut short by a crash
    }
  }
  return out;
}
