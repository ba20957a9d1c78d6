// Hooks: the engine's names (DESIGN.md "Names shared across issues"). A hook is an object with
// any of these methods; trainers take a list of them, called in order. A hook stops training with
// trainer.stop(reason). Built-ins: EarlyStopping, LRMonitor, ProgressBar (checkpointing is the
// engine's own, set by checkpointEveryNSteps / checkpointEveryNEpochs).

import type { TrainingResult, SummaryRow } from "./result.ts";

/** What onBatchEnd receives after each optimizer step (its loss read from the device). */
export interface BatchOutputs {
  /** optimizer steps so far */
  step: number;
  /** the step's training loss (mean over its micro-batches) */
  loss: number;
  /** the first optimizer's learning rate for this step */
  lr: number;
  /** the step function's metrics, averaged over micro-batches */
  metrics: Record<string, number>;
  /** global gradient norm before clipping (when clipping is on) */
  gradNorm?: number;
  msPerIter: number;
  tokensPerS: number;
  /** the last micro-batch's position within its loader this epoch, its loader's index and name */
  batchIdx: number;
  dataloaderIdx: number;
  dataloaderName: string;
}

/** The trainer a hook sees: enough to read state and to stop. */
export interface HookTrainer {
  readonly globalStep: number;
  readonly epoch: number;
  stop(reason?: "early_stop" | "hook" | "interrupt"): void;
}

export interface TrainerHooks<T = HookTrainer, B = unknown> {
  onTrainBegin?(trainer: T, trainData: unknown, valData: unknown): void | Promise<void>;
  onEpochBegin?(trainer: T, epoch: number): void | Promise<void>;
  onBatchEnd?(trainer: T, batch: B, outputs: BatchOutputs): void | Promise<void>;
  onValidationEnd?(trainer: T, metrics: Record<string, number>): void | Promise<void>;
  onEpochEnd?(trainer: T, epoch: number, row: SummaryRow): void | Promise<void>;
  onCheckpoint?(trainer: T, path: string): void | Promise<void>;
  onTrainEnd?(trainer: T, result: TrainingResult): void | Promise<void>;
}

/** Stops when `metric` (default val/loss) has not improved by minDelta for `patience` validations. */
export class EarlyStopping implements TrainerHooks {
  best = Infinity;
  bad = 0;
  bestEpoch?: number;
  readonly metric: string;
  readonly patience: number;
  readonly minDelta: number;
  readonly mode: "min" | "max";
  constructor({ metric = "val/loss", patience, minDelta = 0, mode = "min" }: { metric?: string; patience: number; minDelta?: number; mode?: "min" | "max" }) {
    this.metric = metric;
    this.patience = patience;
    this.minDelta = minDelta;
    this.mode = mode;
  }
  onValidationEnd(trainer: HookTrainer, metrics: Record<string, number>): void {
    const raw = metrics[this.metric];
    if (raw === undefined) return;
    const v = this.mode === "min" ? raw : -raw;
    if (v < this.best - this.minDelta) {
      this.best = v;
      this.bad = 0;
      this.bestEpoch = trainer.epoch + 1;
    } else if (++this.bad >= this.patience) {
      trainer.stop("early_stop");
    }
  }
}

/** Records the learning rate of every optimizer step (lrs), as Lightning's LearningRateMonitor. */
export class LRMonitor implements TrainerHooks {
  readonly lrs: number[] = [];
  onBatchEnd(_t: HookTrainer, _b: unknown, o: BatchOutputs): void {
    this.lrs.push(o.lr);
  }
}

/** One line per logged step and per epoch on a stream (a redrawn line on a TTY). */
export class ProgressBar implements TrainerHooks {
  constructor(readonly every = 10, readonly out: { write(s: string): unknown; isTTY?: boolean } = process.stdout) {}
  onBatchEnd(_t: HookTrainer, _b: unknown, o: BatchOutputs): void {
    if (o.step % this.every !== 0) return;
    const line = `step ${o.step}  loss ${o.loss.toFixed(4)}  lr ${o.lr.toExponential(2)}  ${o.msPerIter.toFixed(1)} ms/it`;
    this.out.write(this.out.isTTY ? `\r\x1b[2K${line}` : `${line}\n`);
  }
  onEpochEnd(_t: HookTrainer, epoch: number, row: SummaryRow): void {
    const parts = Object.entries(row).filter(([k]) => k !== "epoch").map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`);
    this.out.write(`${this.out.isTTY ? "\r\x1b[2K" : ""}epoch ${epoch + 1}: ${parts.join("  ")}\n`);
  }
}
