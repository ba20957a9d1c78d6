// The Trainer: kiln's one training loop. It owns gradient accumulation, the lr schedule, AdamW with
// fused global-norm clipping, evaluation, early stopping, checkpoints (atomic, exact resume),
// Ctrl-C handling, NaN detection, per-phase timings, metrics and hooks. What is trained and how
// the loss is computed are injected (mlx-lm's train(..., loss=...) idea), so SFT and DPO reuse it.

import { join } from "node:path";
import { readFile } from "node:fs/promises";
import type { Module } from "../nn/module.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { scope } from "../tensor/memory.ts";
import { Rng } from "../tensor/random.ts";
import { noGrad } from "../autograd/tape.ts";
import { AdamW } from "../optim/adamw.ts";
import { gradNormSq } from "../optim/clip.ts";
import { warmupCosine } from "../optim/schedule.ts";
import { hasCheckpoint, loadCheckpoint, saveCheckpoint } from "../io/checkpoint.ts";
import { TrainArgs } from "./args.ts";
import { MetricsLog, parseMetrics, writeLossPlot, type MetricRecord } from "./metrics.ts";
import { Progress } from "./progress.ts";
import type { Batch, Split } from "../data/dataset.ts";
import type { z } from "zod";

/** Where batches come from: the TokenDataset, or anything with the same method. */
export interface BatchSource {
  batch(split: Split, batchSize: number, rng: Rng): Batch;
}

export type LossFn = (model: Module, batch: Batch) => Tensor;

export interface StepInfo {
  step: number;
  loss: number;
  lr: number;
  msPerIter: number;
  tokensPerS: number;
}

export interface Hooks {
  onTrainBegin(info: { step: number; iters: number }): void | Promise<void>;
  onStepEnd(info: StepInfo): void | Promise<void>;
  onEvaluate(info: { step: number; valLoss: number; trainLoss?: number }): void | Promise<void>;
  onCheckpoint(info: { step: number; path: string }): void | Promise<void>;
  onTrainEnd(result: TrainingResult): void | Promise<void>;
}

export interface TrainingResult {
  /** optimizer steps completed (including those before a resume) */
  steps: number;
  /** why the loop ended */
  stoppedBy: "done" | "interrupt" | "nan" | "early_stop";
  /** the last training loss read */
  trainLoss: number;
  /** the final evaluation's mean val loss (finalEvalIters batches), when evaluated */
  valLoss?: number;
  bestValLoss?: number;
  /** training losses of the steps run in this call, in order */
  losses: number[];
  seconds: number;
  tokensPerS: number;
  checkpoint?: string;
}

export interface TrainerOptions {
  model: Module;
  data: BatchSource;
  args?: z.input<typeof TrainArgs>;
  /** default: model.loss(batch.x, batch.y) */
  loss?: LossFn;
  /** default: AdamW with nanoGPT groups (weight decay on rank >= 2 tensors only) */
  optimizer?: AdamW;
  /** run folder for checkpoints/, metrics.jsonl and loss.svg (null: keep nothing on disk) */
  outDir?: string | null;
  hooks?: Partial<Hooks>;
  /** progress display (false: silent) */
  progress?: Progress | false;
  /** continue from the newest checkpoint in outDir/checkpoints */
  resume?: boolean;
}

export class Trainer {
  readonly args: TrainArgs;
  readonly model: Module;
  readonly optimizer: AdamW;
  readonly data: BatchSource;
  readonly metrics: MetricsLog;
  /** batch sampling RNG (its state is checkpointed) */
  readonly rng: Rng;
  step = 0;
  #interrupted = false;
  readonly #loss: LossFn;
  readonly #hooks: Partial<Hooks>;
  readonly #progress: Progress | null;
  readonly #outDir: string | null;
  readonly #resume: boolean;

  constructor(options: TrainerOptions) {
    this.args = TrainArgs.parse(options.args ?? {});
    this.model = options.model;
    this.data = options.data;
    this.#loss = options.loss ?? defaultLoss;
    this.optimizer = options.optimizer ?? defaultOptimizer(this.model, this.args);
    this.rng = new Rng(this.args.seed + 1);
    this.#hooks = options.hooks ?? {};
    this.#progress = options.progress === false ? null : options.progress ?? new Progress();
    this.#outDir = options.outDir ?? null;
    this.#resume = !!options.resume;
    this.metrics = new MetricsLog(this.#outDir ? join(this.#outDir, "metrics.jsonl") : null);
  }

  get checkpointDir(): string | null {
    return this.#outDir ? join(this.#outDir, "checkpoints") : null;
  }

  /** Asks the loop to stop after the current step, save a checkpoint and return ("interrupt"). */
  interrupt(): void {
    this.#interrupted = true;
  }

  /** The learning rate at step `it`. */
  lrAt(it: number): number {
    const a = this.args;
    if (a.schedule === "constant") return a.lr;
    return warmupCosine(it, { lr: a.lr, minLr: a.minLr, warmupSteps: a.warmupIters, decaySteps: a.decayIters ?? a.iters });
  }

  /** Mean loss over `iters` batches of `split`, without gradients, with a deterministic RNG. */
  async evaluate(split: Split, iters: number): Promise<number> {
    const rng = new Rng((this.args.seed * 7919 + this.step * 31 + (split === "val" ? 1 : 2)) >>> 0);
    this.model.eval();
    const losses: Tensor[] = [];
    try {
      for (let i = 0; i < iters; i++) {
        losses.push(scope(() => noGrad(() => this.#loss(this.model, this.data.batch(split, this.args.batchSize, rng)))));
      }
      // one read per loss, after all batches are queued (a GPU keeps working meanwhile)
      let total = 0;
      for (const l of losses) total += (await l.data())[0];
      return total / iters;
    } finally {
      for (const l of losses) l.dispose();
      this.model.train();
    }
  }

  /** Runs the loop to args.iters (or until interrupted, NaN, or early stop). */
  async fit(): Promise<TrainingResult> {
    const a = this.args;
    const ckptDir = this.checkpointDir;
    let previous: MetricRecord[] = [];
    if (this.#resume) {
      if (!ckptDir || !(await hasCheckpoint(ckptDir))) throw new Error(`[train] nothing to resume: no checkpoint in ${ckptDir ?? "(no run folder)"}`);
      const state = await loadCheckpoint(ckptDir, { model: this.model, optimizer: this.optimizer });
      this.step = state.step;
      this.rng.setState(state.rng as ReturnType<Rng["getState"]>);
      Rng.global.setState(state.globalRng as ReturnType<Rng["getState"]>);
      const text = await readFile(join(this.#outDir!, "metrics.jsonl"), "utf8").catch(() => "");
      previous = parseMetrics(text);
    }
    await this.metrics.open(previous, this.step);
    const onSigint = () => this.interrupt();
    process.on("SIGINT", onSigint);
    const t0 = performance.now();
    const losses: number[] = [];
    let stoppedBy: TrainingResult["stoppedBy"] = "done";
    let lastLoss = NaN;
    let bestVal = Infinity;
    let sinceBest = 0;
    let lastCheckpoint: string | undefined;
    let tokens = 0;
    const phase = { data: 0, forward: 0, backward: 0, optimizer: 0 };
    let windowStart = performance.now();
    let windowSteps = 0;
    let windowTokens = 0;
    try {
      await this.#hooks.onTrainBegin?.({ step: this.step, iters: a.iters });
      // On a backend that reads synchronously (wasm) every step's loss is read at once; on a GPU,
      // losses stay on the device and are read in one go at log, eval and checkpoint steps, so
      // the host never waits for the device between steps.
      const deferReads = !this.optimizer.params[0]?.backend.downloadSync;
      const pending: { step: number; lr: number; losses: Tensor[] }[] = [];
      let stop = false;
      while (this.step < a.iters && !stop) {
        const lr = this.lrAt(this.step);
        const { losses: stepLosses, stepTokens } = this.#trainStep(lr, phase);
        this.step++;
        tokens += stepTokens;
        windowSteps++;
        windowTokens += stepTokens;
        pending.push({ step: this.step, lr, losses: stepLosses });
        const must = (n: number) => n > 0 && this.step % n === 0;
        if (deferReads && !(must(a.logInterval) || must(a.evalInterval) || must(a.checkpointInterval) || this.#interrupted || this.step === a.iters)) continue;

        for (const p of pending.splice(0)) {
          let loss = 0;
          for (const l of p.losses) loss += (await l.data())[0];
          loss /= p.losses.length;
          losses.push(loss);
          lastLoss = loss;
          if (!Number.isFinite(loss)) {
            stoppedBy = "nan";
            stop = true;
            this.#progress?.line(`[train] loss became ${loss} at step ${p.step}: stopping. ` +
              (lastCheckpoint ?? (ckptDir && (await hasCheckpoint(ckptDir))) ? `The last good checkpoint in ${ckptDir} is kept.` : "No checkpoint was written."));
            break;
          }
          const now = performance.now();
          const isLog = p.step % a.logInterval === 0 || p.step === a.iters;
          const rate = (windowTokens * 1000) / Math.max(now - windowStart, 1e-6);
          const msPerIter = (now - windowStart) / Math.max(windowSteps, 1);
          this.#progress?.update({ step: p.step, total: a.iters, loss, tokensPerS: rate, msPerIter, lr: p.lr }, isLog);
          await this.#hooks.onStepEnd?.({ step: p.step, loss, lr: p.lr, msPerIter, tokensPerS: rate });
          const record: MetricRecord = { step: p.step, loss, lr: p.lr };
          if (isLog) {
            Object.assign(record, {
              tokens_per_s: Math.round(rate),
              ms_per_iter: +msPerIter.toFixed(3),
              ms_data: +(phase.data / windowSteps).toFixed(3),
              ms_forward: +(phase.forward / windowSteps).toFixed(3),
              ms_backward: +(phase.backward / windowSteps).toFixed(3),
              ms_optimizer: +(phase.optimizer / windowSteps).toFixed(3),
            });
            phase.data = phase.forward = phase.backward = phase.optimizer = 0;
            windowStart = performance.now();
            windowSteps = 0;
            windowTokens = 0;
          }
          if (a.evalInterval > 0 && p.step % a.evalInterval === 0 && p.step < a.iters) {
            const valLoss = await this.evaluate("val", a.evalIters);
            record.val_loss = valLoss;
            this.#progress?.line(`step ${p.step}: val loss ${valLoss.toFixed(4)}`);
            await this.#hooks.onEvaluate?.({ step: p.step, valLoss });
            if (valLoss < bestVal) {
              bestVal = valLoss;
              sinceBest = 0;
            } else if (a.earlyStopPatience > 0 && ++sinceBest >= a.earlyStopPatience) {
              stoppedBy = "early_stop";
              stop = true;
            }
          }
          await this.metrics.log(record);
          const isCheckpoint = a.checkpointInterval > 0 && p.step % a.checkpointInterval === 0;
          if (ckptDir && (isCheckpoint || (this.#interrupted && p.step === this.step))) lastCheckpoint = await this.#checkpoint(ckptDir);
        }
        for (const p of pending.splice(0)) for (const l of p.losses) l.dispose();
        if (this.#interrupted && !stop) {
          stoppedBy = "interrupt";
          stop = true;
        }
      }
      this.#progress?.end();
      let valLoss: number | undefined;
      if (stoppedBy === "done" || stoppedBy === "early_stop") {
        valLoss = await this.evaluate("val", a.finalEvalIters);
        bestVal = Math.min(bestVal, valLoss);
        await this.metrics.log({ step: this.step, val_loss: valLoss, final: true });
        await this.#hooks.onEvaluate?.({ step: this.step, valLoss });
        if (ckptDir && lastCheckpointStep(lastCheckpoint) !== this.step) lastCheckpoint = await this.#checkpoint(ckptDir);
      }
      if (this.#outDir) await writeLossPlot(join(this.#outDir, "loss.svg"), this.metrics.records, "kiln training loss");
      const seconds = (performance.now() - t0) / 1000;
      const result: TrainingResult = {
        steps: this.step, stoppedBy, trainLoss: lastLoss, valLoss,
        bestValLoss: Number.isFinite(bestVal) ? bestVal : undefined,
        losses, seconds, tokensPerS: tokens / Math.max(seconds, 1e-9), checkpoint: lastCheckpoint,
      };
      await this.#hooks.onTrainEnd?.(result);
      return result;
    } finally {
      process.off("SIGINT", onSigint);
    }
  }

  /** Queues one optimizer step (gradAccum micro-batches); returns the micro-batch losses, unread. */
  #trainStep(lr: number, phase: { data: number; forward: number; backward: number; optimizer: number }): { losses: Tensor[]; stepTokens: number } {
    const a = this.args;
    let stepTokens = 0;
    const losses = scope(() => {
      const losses: Tensor[] = [];
      for (let micro = 0; micro < a.gradAccum; micro++) {
        let t = performance.now();
        const batch = this.data.batch("train", a.batchSize, this.rng);
        stepTokens += batch.x.size;
        phase.data += performance.now() - t;
        t = performance.now();
        const loss = this.#loss(this.model, batch);
        phase.forward += performance.now() - t;
        t = performance.now();
        (a.gradAccum > 1 ? loss.mul(1 / a.gradAccum) : loss).backward();
        phase.backward += performance.now() - t;
        losses.push(loss.detach());
      }
      const t = performance.now();
      this.optimizer.lr = lr;
      const params = this.optimizer.params;
      if (a.gradClip > 0) this.optimizer.step({ gradNormSq: gradNormSq(params), maxNorm: a.gradClip });
      else this.optimizer.step();
      this.optimizer.zeroGrad();
      phase.optimizer += performance.now() - t;
      return losses;
    });
    return { losses, stepTokens };
  }

  async #checkpoint(dir: string): Promise<string> {
    const path = await saveCheckpoint(dir, {
      model: this.model,
      optimizer: this.optimizer,
      state: { step: this.step, optimizerStep: this.optimizer.stepCount, rng: this.rng.getState(), globalRng: Rng.global.getState() },
    });
    await this.#hooks.onCheckpoint?.({ step: this.step, path });
    return path;
  }
}

function lastCheckpointStep(path: string | undefined): number {
  const m = path?.match(/step-(\d+)$/);
  return m ? Number(m[1]) : -1;
}

/** model.loss(x, y): the next-token loss of a language model. */
function defaultLoss(model: Module, batch: Batch): Tensor {
  const lm = model as Module & { loss?: (x: Tensor, y: Tensor) => Tensor };
  if (typeof lm.loss !== "function") throw new Error("[train] the model has no loss(x, y): pass `loss` to the Trainer");
  return lm.loss(batch.x, batch.y);
}

/** AdamW as nanoGPT configures it: weight decay only on tensors of rank >= 2. */
export function defaultOptimizer(model: Module, args: TrainArgs): AdamW {
  const params = model.parameters();
  return new AdamW(
    [
      { params: params.filter((p) => p.rank >= 2), weightDecay: args.weightDecay },
      { params: params.filter((p) => p.rank < 2), weightDecay: 0 },
    ],
    { lr: args.lr, betas: [args.beta1, args.beta2], eps: args.eps },
  );
}
