// Where a run's metrics go. JSONL (metrics.jsonl, appended as the run goes, so a crash keeps what
// was logged; the default), CSV (metrics.csv, written at the end), and an HTML report
// (report.html, one self-contained file). Every run folder also gets loss.svg and the per-epoch
// summary (metrics_summary.csv/.json). Other loggers implement Logger.

import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic.ts";
import { MetricsLog, writeLossPlot, type MetricRecord } from "./metrics.ts";
import type { MetricsSummary } from "./result.ts";
import { htmlReport } from "./report.ts";

export type { MetricRecord } from "./metrics.ts";

/** A metrics sink: log() gets every record, close() the end of the run. */
export interface Logger {
  log(record: MetricRecord): void | Promise<void>;
  close?(run: RunSummary): void | Promise<void>;
}

export interface RunSummary {
  records: readonly MetricRecord[];
  summary: MetricsSummary;
  lossHistory: readonly number[];
  gradNormHistory: readonly number[];
  /** batches drawn per train loader */
  samplingCounts: Record<string, number>;
}

export class RunLoggers {
  readonly jsonl: MetricsLog;
  readonly #others: Logger[] = [];
  #names: string[];

  constructor(readonly outDir: string | null, names: readonly string[] = ["jsonl"], extra: Logger[] = []) {
    this.#names = [...names];
    this.jsonl = new MetricsLog(outDir && this.#names.includes("jsonl") ? join(outDir, "metrics.jsonl") : null);
    this.#others.push(...extra);
  }

  get records(): readonly MetricRecord[] {
    return this.jsonl.records;
  }

  add(logger: Logger): void {
    this.#others.push(logger);
  }

  async open(previous: MetricRecord[]): Promise<void> {
    await this.jsonl.open(previous);
  }

  async log(record: MetricRecord): Promise<void> {
    await this.jsonl.log(record);
    for (const l of this.#others) await l.log(record);
  }

  async close(summary: MetricsSummary, lossHistory: readonly number[], gradNormHistory: readonly number[], samplingCounts: Record<string, number> = {}): Promise<void> {
    const run: RunSummary = { records: this.jsonl.records, summary, lossHistory, gradNormHistory, samplingCounts };
    if (this.outDir) {
      await writeLossPlot(join(this.outDir, "loss.svg"), this.jsonl.records, "kiln training loss");
      if (summary.rows.length) await summary.write(this.outDir);
      if (this.#names.includes("csv")) await writeFileAtomic(join(this.outDir, "metrics.csv"), recordsToCsv(this.jsonl.records));
      if (this.#names.includes("html")) await writeFileAtomic(join(this.outDir, "report.html"), htmlReport(run));
    }
    for (const l of this.#others) await l.close?.(run);
  }
}

/** The records as CSV, one column per key seen. */
export function recordsToCsv(records: readonly MetricRecord[]): string {
  const cols: string[] = [];
  for (const r of records) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
  const cell = (v: unknown) => (v === undefined ? "" : typeof v === "string" ? JSON.stringify(v) : String(v));
  return [cols.join(","), ...records.map((r) => cols.map((c) => cell(r[c])).join(","))].join("\n") + "\n";
}
