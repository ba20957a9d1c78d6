// Run metrics: one JSON object per logged step in metrics.jsonl (appended as the run goes, so a
// crash keeps what was logged), and a loss-curve plot (loss.svg) drawn from them.

import { appendFile, writeFile } from "node:fs/promises";
import { writeFileAtomic } from "../io/atomic.ts";

export interface MetricRecord {
  step: number;
  loss?: number;
  val_loss?: number;
  train_loss_eval?: number;
  lr?: number;
  tokens_per_s?: number;
  ms_per_iter?: number;
  [key: string]: unknown;
}

export class MetricsLog {
  readonly records: MetricRecord[] = [];
  constructor(readonly path: string | null) {}

  /** Starts a fresh file, or (on resume) keeps the records up to `upToStep` from an existing one. */
  async open(existing: MetricRecord[] = [], upToStep = Infinity): Promise<void> {
    this.records.push(...existing.filter((r) => r.step <= upToStep));
    if (this.path) await writeFile(this.path, this.records.map((r) => JSON.stringify(r) + "\n").join(""));
  }

  async log(record: MetricRecord): Promise<void> {
    this.records.push(record);
    if (this.path) await appendFile(this.path, JSON.stringify(record) + "\n");
  }
}

/** Parses a metrics.jsonl text (skipping a torn last line). */
export function parseMetrics(text: string): MetricRecord[] {
  const out: MetricRecord[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as MetricRecord);
    } catch {
      // a line cut short by a crash
    }
  }
  return out;
}

/** Writes an SVG line chart of train loss and val loss against step. */
export async function writeLossPlot(path: string, records: readonly MetricRecord[], title = "loss"): Promise<void> {
  await writeFileAtomic(path, lossPlotSvg(records, title));
}

export function lossPlotSvg(records: readonly MetricRecord[], title: string): string {
  const W = 720, H = 420, L = 60, R = 20, T = 40, B = 50;
  const train = records.filter((r) => typeof r.loss === "number" && Number.isFinite(r.loss)).map((r) => [r.step, r.loss!] as const);
  const val = records.filter((r) => typeof r.val_loss === "number").map((r) => [r.step, r.val_loss!] as const);
  const all = [...train, ...val];
  if (all.length === 0) return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><text x="20" y="40">no data</text></svg>`;
  const xMax = Math.max(1, ...all.map(([s]) => s));
  const yMin = Math.min(...all.map(([, l]) => l));
  const yMax = Math.max(...all.map(([, l]) => l));
  const ySpan = yMax - yMin || 1;
  const px = (s: number) => L + ((W - L - R) * s) / xMax;
  const py = (l: number) => T + ((H - T - B) * (yMax - l)) / ySpan;
  const line = (pts: readonly (readonly [number, number])[]) => pts.map(([s, l], i) => `${i ? "L" : "M"}${px(s).toFixed(1)},${py(l).toFixed(1)}`).join(" ");
  const ticks = Array.from({ length: 5 }, (_, i) => yMin + (ySpan * i) / 4);
  const xticks = Array.from({ length: 5 }, (_, i) => Math.round((xMax * i) / 4));
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(title)}</text>`,
    ...ticks.map((v) => `<line x1="${L}" x2="${W - R}" y1="${py(v)}" y2="${py(v)}" stroke="#eee"/><text x="${L - 6}" y="${py(v) + 4}" text-anchor="end">${v.toFixed(2)}</text>`),
    ...xticks.map((s) => `<text x="${px(s)}" y="${H - B + 18}" text-anchor="middle">${s}</text>`),
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`,
    `<text x="${W / 2}" y="${H - 12}" text-anchor="middle">step</text>`,
    train.length ? `<path d="${line(train)}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>` : "",
    val.length ? `<path d="${line(val)}" fill="none" stroke="#d62728" stroke-width="2"/>` + val.map(([s, l]) => `<circle cx="${px(s)}" cy="${py(l)}" r="3" fill="#d62728"/>`).join("") : "",
    `<rect x="${W - R - 130}" y="${T}" width="120" height="44" fill="white" stroke="#ccc"/>`,
    `<line x1="${W - R - 120}" x2="${W - R - 95}" y1="${T + 15}" y2="${T + 15}" stroke="#1f77b4" stroke-width="2"/><text x="${W - R - 88}" y="${T + 19}">train loss</text>`,
    `<line x1="${W - R - 120}" x2="${W - R - 95}" y1="${T + 33}" y2="${T + 33}" stroke="#d62728" stroke-width="2"/><text x="${W - R - 88}" y="${T + 37}">val loss</text>`,
    `</svg>`,
  ].join("\n");
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;" })[c]!);
}
