// The Trainer: kiln's one training loop. It owns gradient accumulation, the lr schedule, the
// optimizer step with global-norm clipping, evaluation, early stopping, checkpoints (atomic, exact
// resume), stopping on request (interrupt() or an AbortSignal; signal handlers belong to the CLI),
// NaN detection, per-phase timings, metrics and a list of hooks. What is trained, the shape of a
// batch and how the loss is computed are injected (mlx-lm's train(..., loss=...) idea), so SFT and
// DPO reuse it. Its RNG streams (batches, dropout) are its own: it never writes Rng.global.

import { join } from "node:path";
import { readFile } from "node:fs/promises";
import type { Module } from "../nn/module.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { scope } from "../tensor/memory.ts";
import { Rng, withRng } from "../tensor/random.ts";
import { noGrad } from "../autograd/tape.ts";
import { withTraining } from "../tensor/mode.ts";
import { AdamW } from "../optim/adamw.ts";
import type { Optimizer } from "../optim/optimizer.ts";
import { gradNormSq } from "../optim/clip.ts";
import { warmupCosine } from "../optim/schedule.ts";
import { hasCheckpoint, loadCheckpoint, saveCheckpoint } from "../io/checkpoint.ts";
import { TrainArgs } from "./args.ts";
import { MetricsLog, parseMetrics, writeLossPlot, type MetricRecord } from "./metrics.ts";
import { Progress } from "./progress.ts";
import type { Batch, Split } from "../data/dataset.ts";
import type { z } from "zod";

/** Where batches come from: the TokenDataset, or anything with the same method; a batch may have any shape. */
export interface BatchSource<B = Batch> {
  batch(split: Split, batchSize: number, rng: Rng): B;
}

/** What a loss function returns: the scalar to minimise, and scalars to log beside it (mean over micro-batches). */
export interface LossOutput {
  loss: Tensor;
  metrics?: Record<string, Tensor | number>;
}

export type LossFn<B = Batch> = (model: Module, batch: B) => Tensor | LossOutput;

export interface StepInfo {
  step: number;
  loss: number;
  lr: number;
  msPerIter: number;
  tokensPerS: number;
  /** the loss function's metrics, averaged over the step's micro-batches */
  metrics: Record<string, number>;
}

/** Hooks (the engine's names, DESIGN.md); pass a list of objects, each implementing any of them. */
export interface Hooks<B = Batch> {
  onTrainBegin(trainer: Trainer<B>, info: { step: number; iters: number }): void | Promise<void>;
  /** after each optimizer step, once its loss is read; `batch` is the step's last micro-batch */
  onBatchEnd(trainer: Trainer<B>, batch: B, outputs: StepInfo): void | Promise<void>;
  onValidationEnd(trainer: Trainer<B>, info: { step: number; valLoss: number }): void | Promise<void>;
  onCheckpoint(trainer: Trainer<B>, info: { step: number; path: string }): void | Promise<void>;
  onTrainEnd(trainer: Trainer<B>, result: TrainingResult): void | Promise<void>;
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
  /** wall time of fit(), evaluation and checkpoints included */
  seconds: number;
  /** training throughput: tokens per second of the time not spent evaluating or checkpointing */
  tokensPerS: number;
  /** time spent in evaluations (periodic and final) */
  evalSeconds: number;
  /** time spent writing checkpoints */
  checkpointSeconds: number;
  checkpoint?: string;
}

export interface TrainerOptions<B = Batch> {
  model: Module;
  data: BatchSource<B>;
  args?: z.input<typeof TrainArgs>;
  /** default: model.loss(batch.x, batch.y) */
  loss?: LossFn<B>;
  /** default: AdamW with nanoGPT groups over the trainable parameters (weight decay on rank >= 2 tensors only) */
  optimizer?: Optimizer;
  /** tokens in a batch, for tokens/s (default: batch.x.size when the batch has a tensor x) */
  tokens?: (batch: B) => number;
  /** run folder for checkpoints/, metrics.jsonl and loss.svg (null: keep nothing on disk) */
  outDir?: string | null;
  hooks?: Partial<Hooks<B>>[];
  /** progress display (false: silent) */
  progress?: Progress | false;
  /** continue from the newest checkpoint in outDir/checkpoints */
  resume?: boolean;
  /** aborting it stops the loop after the current step, as interrupt() does */
  signal?: AbortSignal;
  /** with resume: continue from the checkpoint of this step instead of the newest */
  resumeFrom?: number;
}

export class Trainer<B = Batch> {
  readonly args: TrainArgs;
  readonly model: Module;
  readonly optimizer: Optimizer;
  readonly data: BatchSource<B>;
  readonly metrics: MetricsLog;
  /** batch sampling RNG (its state is checkpointed) */
  readonly rng: Rng;
  /** the RNG dropout draws from during training steps (checkpointed; Rng.global is never touched) */
  readonly dropoutRng: Rng;
  step = 0;
  #interrupted = false;
  readonly #loss: LossFn<B>;
  readonly #tokens: (batch: B) => number;
  readonly #hooks: Partial<Hooks<B>>[];
  readonly #progress: Progress | null;
  readonly #outDir: string | null;
  readonly #resume: boolean;
  readonly #signal?: AbortSignal;
  readonly #resumeFrom: number | undefined;

  constructor(options: TrainerOptions<B>) {
    this.args = TrainArgs.parse(options.args ?? {});
    this.model = options.model;
    this.data = options.data;
    this.#loss = options.loss ?? (defaultLoss as unknown as LossFn<B>);
    this.#tokens = options.tokens ?? defaultTokens;
    this.optimizer = options.optimizer ?? defaultOptimizer(this.model, this.args);
    this.rng = new Rng(this.args.seed + 1);
    this.dropoutRng = new Rng(this.args.seed + 3);
    if (options.hooks !== undefined && !Array.isArray(options.hooks)) throw new Error("[train] hooks must be a list: wrap it in a list: [hooks]");
    this.#hooks = options.hooks ?? [];
    this.#progress = options.progress === false ? null : options.progress ?? new Progress();
    this.#outDir = options.outDir ?? null;
    this.#resume = !!options.resume;
    this.#signal = options.signal;
    this.#resumeFrom = options.resumeFrom;
    this.metrics = new MetricsLog(this.#outDir ? join(this.#outDir, "metrics.jsonl") : null);
  }

  get checkpointDir(): string | null {
    return this.#outDir ? join(this.#outDir, "checkpoints") : null;
  }

  /** Asks the loop to stop after the current step, save a checkpoint and return ("interrupt"). */
  interrupt(): void {
    this.#interrupted = true;
  }

  get #stopRequested(): boolean {
    return this.#interrupted || !!this.#signal?.aborted;
  }

  async #emit<K extends keyof Hooks<B>>(name: K, ...args: Parameters<Hooks<B>[K]> extends [unknown, ...infer R] ? R : never): Promise<void> {
    for (const h of this.#hooks) await (h[name] as ((...a: unknown[]) => unknown) | undefined)?.call(h, this, ...args);
  }

  /** The learning rate at step `it`. */
  lrAt(it: number): number {
    const a = this.args;
    if (a.schedule === "constant") return a.lr;
    return warmupCosine(it, { lr: a.lr, minLr: a.minLr, warmupSteps: a.warmupIters, decaySteps: a.decayIters ?? a.iters });
  }

  /** Mean loss over `iters` batches of `split` (each batch's mean loss, averaged), without gradients, in eval mode, with a deterministic RNG. */
  async evaluate(split: Split, iters: number): Promise<number> {
    const rng = new Rng((this.args.seed * 7919 + this.step * 31 + (split === "val" ? 1 : 2)) >>> 0);
    const losses: Tensor[] = [];
    try {
      // eval mode for this call only (the model's flag is not written) and an RNG of its own:
      // evaluation never moves another stream
      for (let i = 0; i < iters; i++) {
        losses.push(withTraining(false, () => withRng(rng, () => scope(() => noGrad(() => lossOf(this.#loss(this.model, this.data.batch(split, this.args.batchSize, rng))).loss)))));
      }
      // one read per loss, after all batches are queued (a GPU keeps working meanwhile)
      let total = 0;
      for (const l of losses) total += (await l.data())[0];
      return total / iters;
    } finally {
      for (const l of losses) l.dispose();
    }
  }

  /** Runs the loop to args.iters (or until interrupted, NaN, or early stop). */
  async fit(): Promise<TrainingResult> {
    const a = this.args;
    const ckptDir = this.checkpointDir;
    let previous: MetricRecord[] = [];
    if (this.#resume) {
      if (!ckptDir || !(await hasCheckpoint(ckptDir))) throw new Error(`[train] nothing to resume: no checkpoint in ${ckptDir ?? "(no run folder)"}`);
      const state = await loadCheckpoint(ckptDir, { model: this.model, optimizer: this.optimizer, step: this.#resumeFrom });
      this.step = state.step;
      this.rng.setState(state.rng as ReturnType<Rng["getState"]>);
      if (state.dropoutRng) this.dropoutRng.setState(state.dropoutRng as ReturnType<Rng["getState"]>);
      const text = await readFile(join(this.#outDir!, "metrics.jsonl"), "utf8").catch(() => "");
      previous = parseMetrics(text);
    }
    await this.metrics.open(previous, this.step);
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
    let evalMs = 0;
    let saveMs = 0;
    let windowSteps = 0;
    let windowTokens = 0;
    {
      await this.#emit("onTrainBegin", { step: this.step, iters: a.iters });
      // On a backend that reads synchronously (wasm) every step's loss is read at once; on a GPU,
      // losses stay on the device and are read in one go at log, eval and checkpoint steps, so
      // the host never waits for the device between steps.
      const deferReads = !this.optimizer.params[0]?.backend.downloadSync;
      const pending: { step: number; lr: number; losses: Tensor[]; metrics: Record<string, Tensor | number>[]; batch: B }[] = [];
      let stop = false;
      while (this.step < a.iters && !stop) {
        const lr = this.lrAt(this.step);
        const { losses: stepLosses, metrics: stepMetrics, batch, stepTokens } = this.#trainStep(lr, phase);
        this.step++;
        tokens += stepTokens;
        windowSteps++;
        windowTokens += stepTokens;
        pending.push({ step: this.step, lr, losses: stepLosses, metrics: stepMetrics, batch });
        const must = (n: number) => n > 0 && this.step % n === 0;
        if (deferReads && !(must(a.logInterval) || must(a.evalInterval) || must(a.checkpointInterval) || this.#stopRequested || this.step === a.iters)) continue;

        for (const p of pending.splice(0)) {
          using _ = { [Symbol.dispose]: () => disposePending(p) };
          let loss = 0;
          for (const l of p.losses) loss += (await l.data())[0];
          loss /= p.losses.length;
          const metrics = await meanMetrics(p.metrics);
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
          const deviceBytes = this.optimizer.params[0]?.backend.stats().allocatedBytes;
          this.#progress?.update({ step: p.step, total: a.iters, loss, tokensPerS: rate, msPerIter, lr: p.lr, deviceBytes }, isLog);
          await this.#emit("onBatchEnd", p.batch, { step: p.step, loss, lr: p.lr, msPerIter, tokensPerS: rate, metrics });
          const record: MetricRecord = { step: p.step, loss, lr: p.lr, ...metrics };
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
            const te = performance.now();
            const valLoss = await this.evaluate("val", a.evalIters);
            const evalTime = performance.now() - te;
            evalMs += evalTime;
            windowStart += evalTime; // the throughput window counts training only
            record.val_loss = valLoss;
            this.#progress?.line(`step ${p.step}: val loss ${valLoss.toFixed(4)}`);
            await this.#emit("onValidationEnd", { step: p.step, valLoss });
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
          if (ckptDir && (isCheckpoint || (this.#stopRequested && p.step === this.step))) {
            const tc = performance.now();
            lastCheckpoint = await this.#checkpoint(ckptDir);
            const saveTime = performance.now() - tc;
            saveMs += saveTime;
            windowStart += saveTime;
          }
        }
        for (const p of pending.splice(0)) disposePending(p);
        if (this.#stopRequested && !stop) {
          stoppedBy = "interrupt";
          stop = true;
        }
      }
      this.#progress?.end();
      let valLoss: number | undefined;
      if (stoppedBy === "done" || stoppedBy === "early_stop") {
        const te = performance.now();
        valLoss = await this.evaluate("val", a.finalEvalIters);
        evalMs += performance.now() - te;
        bestVal = Math.min(bestVal, valLoss);
        await this.metrics.log({ step: this.step, val_loss: valLoss, final: true });
        await this.#emit("onValidationEnd", { step: this.step, valLoss });
        if (ckptDir && lastCheckpointStep(lastCheckpoint) !== this.step) {
          const tc = performance.now();
          lastCheckpoint = await this.#checkpoint(ckptDir);
          saveMs += performance.now() - tc;
        }
      }
      if (this.#outDir) await writeLossPlot(join(this.#outDir, "loss.svg"), this.metrics.records, "kiln training loss");
      const seconds = (performance.now() - t0) / 1000;
      const result: TrainingResult = {
        steps: this.step, stoppedBy, trainLoss: lastLoss, valLoss,
        bestValLoss: Number.isFinite(bestVal) ? bestVal : undefined,
        losses, seconds, tokensPerS: tokens / Math.max(seconds - (evalMs + saveMs) / 1000, 1e-9),
        evalSeconds: evalMs / 1000, checkpointSeconds: saveMs / 1000, checkpoint: lastCheckpoint,
      };
      await this.#emit("onTrainEnd", result);
      return result;
    }
  }

  /** Queues one optimizer step (gradAccum micro-batches); returns the micro-batch losses and metrics, unread. */
  #trainStep(lr: number, phase: { data: number; forward: number; backward: number; optimizer: number }) {
    const a = this.args;
    let stepTokens = 0;
    const out = withRng(this.dropoutRng, () => scope(() => {
      const losses: Tensor[] = [];
      const metrics: Record<string, Tensor | number>[] = [];
      let batch!: B;
      for (let micro = 0; micro < a.gradAccum; micro++) {
        let t = performance.now();
        batch = this.data.batch("train", a.batchSize, this.rng);
        stepTokens += this.#tokens(batch);
        phase.data += performance.now() - t;
        t = performance.now();
        const { loss, metrics: m } = lossOf(this.#loss(this.model, batch));
        phase.forward += performance.now() - t;
        t = performance.now();
        // mean over micro-batches: each contributes 1/N of its gradient
        (a.gradAccum > 1 ? loss.mul(1 / a.gradAccum) : loss).backward();
        phase.backward += performance.now() - t;
        losses.push(loss.detach());
        if (m) metrics.push(Object.fromEntries(Object.entries(m).map(([k, v]) => [k, typeof v === "number" ? v : v.detach()])));
      }
      const t = performance.now();
      this.optimizer.lr = lr;
      const params = this.optimizer.params;
      if (a.gradClip > 0) this.optimizer.step({ gradNormSq: gradNormSq(params), maxNorm: a.gradClip });
      else this.optimizer.step();
      this.optimizer.zeroGrad();
      phase.optimizer += performance.now() - t;
      return { losses, metrics, batch };
    }));
    return { ...out, stepTokens };
  }

  async #checkpoint(dir: string): Promise<string> {
    const path = await saveCheckpoint(dir, {
      model: this.model,
      optimizer: this.optimizer,
      state: { step: this.step, rng: this.rng.getState(), dropoutRng: this.dropoutRng.getState() },
    });
    await this.#emit("onCheckpoint", { step: this.step, path });
    return path;
  }
}

function lastCheckpointStep(path: string | undefined): number {
  const m = path?.match(/step-(\d+)(\.\d+)?$/);
  return m ? Number(m[1]) : -1;
}

/** model.loss(x, y): the next-token loss of a language model. */
function defaultLoss(model: Module, batch: Batch): Tensor {
  const lm = model as Module & { loss?: (x: Tensor, y: Tensor) => Tensor };
  if (typeof lm.loss !== "function") throw new Error("[train] the model has no loss(x, y): pass `loss` to the Trainer");
  if (!batch || typeof batch !== "object" || !("x" in batch) || !("y" in batch)) {
    throw new Error("[train] the default loss needs batches { x, y }: pass `loss` to the Trainer for other batch shapes");
  }
  return lm.loss(batch.x, batch.y);
}

function defaultTokens(batch: unknown): number {
  const x = (batch as { x?: unknown } | null)?.x;
  return x && typeof x === "object" && "size" in x ? (x as Tensor).size : 0;
}

function lossOf(out: Tensor | LossOutput): LossOutput {
  return "loss" in out && !("shape" in out) ? out : { loss: out as Tensor };
}

async function meanMetrics(list: Record<string, Tensor | number>[]): Promise<Record<string, number>> {
  const sums: Record<string, number> = {};
  for (const m of list) {
    for (const [k, v] of Object.entries(m)) sums[k] = (sums[k] ?? 0) + (typeof v === "number" ? v : (await v.data())[0]);
  }
  for (const k of Object.keys(sums)) sums[k] /= list.length;
  return sums;
}

function disposePending(p: { losses: Tensor[]; metrics: Record<string, Tensor | number>[]; batch: unknown }): void {
  for (const l of p.losses) if (!l.disposed) l.dispose();
  for (const m of p.metrics) for (const v of Object.values(m)) if (typeof v !== "number" && !v.disposed) v.dispose();
  disposeTensors(p.batch);
}

/** Disposes the tensors a batch holds (a tensor, or an array/object of them). */
function disposeTensors(value: unknown, depth = 0): void {
  if (!value || typeof value !== "object" || depth > 3) return;
  if ("dispose" in value && "disposed" in value) {
    if (!(value as Tensor).disposed) (value as Tensor).dispose();
  } else for (const v of Object.values(value)) disposeTensors(v, depth + 1);
}

/** AdamW as nanoGPT configures it, over the trainable parameters: weight decay only on tensors of rank >= 2. */
export function defaultOptimizer(model: Module, args: TrainArgs): AdamW {
  const params = model.trainableParameters();
  return new AdamW(
    [
      { params: params.filter((p) => p.rank >= 2), weightDecay: args.weightDecay },
      { params: params.filter((p) => p.rank < 2), weightDecay: 0 },
    ],
    { lr: args.lr, betas: [args.beta1, args.beta2], eps: args.eps },
  );
}
