// The one result type of every training run (DESIGN.md "Names shared across issues"): the engine,
// `kiln train`, SFT and DPO all return a TrainingResult. Its metricsSummary is one row per epoch
// (printable, and written as CSV and JSON).

import { writeFileAtomic } from "../io/atomic.ts";

/** done: ran its epochs or maxSteps; interrupt: interrupt() or an aborted signal; hook: a hook called stop() */
export type StoppedBy = "done" | "interrupt" | "nan" | "early_stop" | "hook";

export interface TrainingResult {
  /** optimizer steps completed (including those before a resume) */
  steps: number;
  /** epochs completed */
  epochs: number;
  /** why the loop ended */
  stoppedBy: StoppedBy;
  /** the training loss of every optimizer step run in this call, in order */
  lossHistory: number[];
  /** mean training loss over the last logging window */
  finalLoss: number;
  /** the last validation's mean loss, when validated */
  finalValLoss?: number;
  bestValLoss?: number;
  /** exp(finalValLoss) (or of finalLoss without validation) */
  finalPerplexity: number;
  /** wall time of this call in seconds, validation and checkpoints included */
  trainingTime: number;
  /** training throughput: tokens per second of the time not spent validating or checkpointing */
  tokensPerS: number;
  /** seconds spent in validation */
  evalSeconds: number;
  /** seconds spent writing checkpoints */
  checkpointSeconds: number;
  /** one row per epoch: epoch, train/loss, val/loss, train/perplexity, ..., train/learning_rate */
  metricsSummary: MetricsSummary;
  /** epoch (1-based) with the best monitored metric (val/loss by default) */
  bestEpoch?: number;
  /** global gradient norm (before clipping) per optimizer step, when clipping is on */
  gradNormHistory: number[];
  ampEnabled: boolean;
  /** the newest checkpoint folder written */
  checkpointPath?: string;
}

export type SummaryRow = Record<string, number>;

/** Rows of per-epoch metrics with the columns every row has in first-seen order. */
export class MetricsSummary {
  readonly rows: SummaryRow[] = [];

  add(row: SummaryRow): void {
    this.rows.push(row);
  }

  get columns(): string[] {
    const cols: string[] = [];
    for (const r of this.rows) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
    return cols;
  }

  toCSV(): string {
    const cols = this.columns;
    return [cols.join(","), ...this.rows.map((r) => cols.map((c) => (r[c] === undefined ? "" : String(r[c]))).join(","))].join("\n") + "\n";
  }

  toJSON(): SummaryRow[] {
    return this.rows;
  }

  /** A fixed-width text table. */
  format(): string {
    const cols = this.columns;
    const cell = (v: number | undefined) => (v === undefined ? "" : Number.isInteger(v) ? String(v) : Math.abs(v) < 1e-3 && v !== 0 ? v.toExponential(3) : v.toFixed(4));
    const table = [cols, ...this.rows.map((r) => cols.map((c) => cell(r[c])))];
    const widths = cols.map((_, i) => Math.max(...table.map((row) => row[i].length)));
    return table.map((row) => row.map((v, i) => v.padStart(widths[i])).join("  ")).join("\n");
  }

  /** Writes metrics_summary.csv and metrics_summary.json into `dir`. */
  async write(dir: string): Promise<void> {
    await writeFileAtomic(`${dir}/metrics_summary.csv`, this.toCSV());
    await writeFileAtomic(`${dir}/metrics_summary.json`, JSON.stringify(this.rows, null, 2) + "\n");
  }

  static from(rows: SummaryRow[]): MetricsSummary {
    const s = new MetricsSummary();
    for (const r of rows) s.add(r);
    return s;
  }
}
