// hyperparameterSearch: the one-call helper over a study, with the dict-style search space
// ({ lr: [1e-5, 1e-3], batch_size: [4, 8, 16] }: two numbers are a range, a longer list — or
// { choices: [...] } — is categorical), and the study's report in a run folder: trials.csv,
// trials.json and study.html (objective per trial with the best so far, and one slice plot per
// parameter). PruningHook reports a Trainer's validation metric to a trial and stops the run when
// the pruner says so.

import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { HookTrainer, TrainerHooks } from "../train/hooks.ts";
import type { ParamValue } from "./distributions.ts";
import type { FrozenTrial, SamplerSpec } from "./samplers.ts";
import type { PrunerSpec } from "./pruners.ts";
import { createStudy, TrialPruned, type Study, type Trial } from "./study.ts";

export type SpaceEntry =
  | readonly [number, number]
  | readonly ParamValue[]
  | { low: number; high: number; log?: boolean; step?: number; type?: "float" | "int" }
  | { choices: readonly ParamValue[] };
export type SearchSpace = Record<string, SpaceEntry>;

/**
 * Suggests every parameter of a dict-style space. A range of two integers is an int range; a float
 * range spanning 100x or more with low > 0 is sampled on a log scale (learning rates, weight decay).
 */
export function suggestSpace(trial: Trial, space: SearchSpace): Record<string, ParamValue> {
  const out: Record<string, ParamValue> = {};
  for (const [name, entry] of Object.entries(space)) {
    if (Array.isArray(entry)) {
      if (entry.length === 2 && typeof entry[0] === "number" && typeof entry[1] === "number") {
        const [low, high] = entry as [number, number];
        if (Number.isInteger(low) && Number.isInteger(high)) out[name] = trial.suggestInt(name, low, high);
        else out[name] = trial.suggestFloat(name, low, high, { log: low > 0 && high / low >= 100 });
      } else out[name] = trial.suggestCategorical(name, entry as ParamValue[]);
    } else if (entry && typeof entry === "object" && "choices" in entry) {
      out[name] = trial.suggestCategorical(name, entry.choices);
    } else if (entry && typeof entry === "object" && "low" in entry) {
      const { low, high, log = false, step, type } = entry;
      const isInt = type === "int" || (type === undefined && Number.isInteger(low) && Number.isInteger(high) && (step === undefined || Number.isInteger(step)));
      out[name] = isInt ? trial.suggestInt(name, low, high, { log, step: step ?? 1 }) : trial.suggestFloat(name, low, high, { log, step: step ?? null });
    } else {
      throw new Error(`[search] ${name}: expected [low, high], a list of choices, { low, high, log?, step? } or { choices } (got ${JSON.stringify(entry)})`);
    }
  }
  return out;
}

export interface SearchOptions {
  nTrials?: number;
  timeout?: number;
  direction?: "minimize" | "maximize";
  sampler?: SamplerSpec;
  pruner?: PrunerSpec;
  storage?: string;
  studyName?: string;
  seed?: number;
  /** write trials.csv, trials.json and study.html here */
  outDir?: string;
  showProgressBar?: boolean;
}

export interface SearchResult {
  bestParams: Record<string, ParamValue> | null;
  bestValue: number | null;
  trials: FrozenTrial[];
  study: Study;
  /** study.html, when outDir was given */
  reportPath: string | null;
}

/** Runs a study over a dict-style space: objective(params, trial) returns the value to minimise (or maximise). */
export async function hyperparameterSearch(
  objective: (params: Record<string, ParamValue>, trial: Trial) => number | Promise<number>,
  space: SearchSpace,
  options: SearchOptions = {},
): Promise<SearchResult> {
  const gridSpace = options.sampler === "grid" ? gridOf(space) : undefined;
  const study = await createStudy({
    direction: options.direction, sampler: options.sampler, pruner: options.pruner, storage: options.storage,
    studyName: options.studyName, loadIfExists: !!options.studyName, seed: options.seed, searchSpace: gridSpace,
  });
  await study.optimize((trial) => objective(suggestSpace(trial, space), trial), {
    nTrials: options.nTrials ?? (options.timeout === undefined ? 20 : undefined), timeout: options.timeout, showProgressBar: options.showProgressBar,
  });
  const reportPath = options.outDir ? await writeStudyReport(study, options.outDir) : null;
  return { bestParams: study.bestParams, bestValue: study.bestValue, trials: study.trials, study, reportPath };
}

/** The grid a dict-style space implies: choices as given, ranges as 5 points (log-spaced on a log scale). */
function gridOf(space: SearchSpace): Record<string, ParamValue[]> {
  const out: Record<string, ParamValue[]> = {};
  for (const [name, entry] of Object.entries(space)) {
    if (Array.isArray(entry) && !(entry.length === 2 && entry.every((v) => typeof v === "number"))) out[name] = [...entry];
    else if (entry && typeof entry === "object" && "choices" in entry) out[name] = [...entry.choices];
    else {
      const [low, high] = Array.isArray(entry) ? (entry as [number, number]) : [(entry as { low: number }).low, (entry as { high: number }).high];
      const isInt = Number.isInteger(low) && Number.isInteger(high);
      const log = low > 0 && high / low >= 100;
      const pts = Array.from({ length: 5 }, (_, i) => (log ? low * (high / low) ** (i / 4) : low + ((high - low) * i) / 4));
      out[name] = [...new Set(pts.map((p) => (isInt ? Math.round(p) : Number(p.toPrecision(6)))))];
    }
  }
  return out;
}

/** Reports a validation metric to a trial after each validation; stops the run when the trial should be pruned (then call check()). */
export class PruningHook implements TrainerHooks {
  pruned = false;
  constructor(readonly trial: Trial, readonly metric = "val/loss") {}

  onValidationEnd(trainer: HookTrainer, metrics: Record<string, number>): void {
    const value = metrics[this.metric];
    if (typeof value !== "number") return;
    this.trial.report(value, trainer.globalStep);
    if (this.trial.shouldPrune()) {
      this.pruned = true;
      trainer.stop("hook");
    }
  }

  /** Throws TrialPruned when the run was stopped by the pruner. */
  check(): void {
    if (this.pruned) throw new TrialPruned(`trial ${this.trial.number} pruned at step ${Math.max(...Object.keys(this.trial.intermediate).map(Number))}`);
  }
}

/** trials.csv, trials.json and study.html (objective per trial, best so far, a slice plot per parameter) in `dir`; returns study.html's path. */
export async function writeStudyReport(study: Study, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const trials = await study.getTrials();
  const names = [...new Set(trials.flatMap((t) => Object.keys(t.params)))].sort();
  const esc = (v: unknown) => (v === null || v === undefined ? "" : /[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));
  const csv = [["number", "state", "value", ...names.map((n) => `params_${n}`)].join(","), ...trials.map((t) => [t.number, t.state, t.value, ...names.map((n) => t.params[n])].map(esc).join(","))];
  await writeFile(join(dir, "trials.csv"), csv.join("\n") + "\n");
  await writeFile(join(dir, "trials.json"), JSON.stringify({ study: study.name, direction: study.direction, bestParams: study.bestParams, bestValue: study.bestValue, trials }, null, 2) + "\n");
  const done = trials.filter((t) => t.state === "complete" && t.value !== null);
  const better = (a: number, b: number) => (study.direction === "minimize" ? a < b : a > b);
  let best: number | null = null;
  const bestLine = done.map((t) => ({ x: t.number, y: (best = best === null || better(t.value!, best) ? t.value! : best) }));
  const plots = [
    svgPlot("objective per trial", "trial", done.map((t) => ({ x: t.number, y: t.value! })), bestLine, false),
    ...names.map((n) => {
      const pts = done.filter((t) => n in t.params).map((t) => ({ x: t.params[n], y: t.value! }));
      const numeric = pts.every((p) => typeof p.x === "number");
      const dist = done.find((t) => n in t.distributions)?.distributions[n];
      const log = !!dist && dist.type !== "categorical" && dist.log;
      const cats = numeric ? [] : [...new Set(pts.map((p) => String(p.x)))];
      return svgPlot(`slice: ${n}`, n, pts.map((p) => ({ x: numeric ? (log ? Math.log10(p.x as number) : (p.x as number)) : cats.indexOf(String(p.x)), y: p.y })), [], log, cats);
    }),
  ];
  const html = `<!doctype html><meta charset="utf-8"><title>${study.name}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}svg{margin:0 1em 1em 0}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}</style>
<h1>${study.name}</h1><p>${study.direction}; ${trials.length} trials (${done.length} complete, ${trials.filter((t) => t.state === "pruned").length} pruned, ${trials.filter((t) => t.state === "fail").length} failed);
best value ${study.bestValue ?? "-"} with ${escapeHtml(JSON.stringify(study.bestParams))}</p>
${plots.join("\n")}
<table><tr><th>trial</th><th>state</th><th>value</th>${names.map((n) => `<th>${escapeHtml(n)}</th>`).join("")}</tr>
${trials.map((t) => `<tr><td>${t.number}</td><td>${t.state}</td><td>${t.value ?? ""}</td>${names.map((n) => `<td>${escapeHtml(String(t.params[n] ?? ""))}</td>`).join("")}</tr>`).join("\n")}
</table>\n`;
  const path = join(dir, "study.html");
  await writeFile(path, html);
  return path;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
}

function svgPlot(title: string, xLabel: string, pts: { x: number; y: number }[], line: { x: number; y: number }[], logX: boolean, categories: string[] = []): string {
  const W = 420, H = 260, L = 60, R = 10, T = 24, B = 36;
  const all = [...pts, ...line];
  if (!all.length) return `<svg width="${W}" height="${H}"><text x="${L}" y="${T}">${escapeHtml(title)}: no complete trials</text></svg>`;
  const xs = all.map((p) => p.x), ys = all.map((p) => p.y);
  let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  if (y0 === y1) [y0, y1] = [y0 - 1, y1 + 1];
  const px = (x: number) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const py = (y: number) => H - B - ((y - y0) / (y1 - y0)) * (H - T - B);
  const fmt = (v: number) => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-2 && v !== 0) ? v.toExponential(1) : String(Number(v.toPrecision(3))));
  const xTicks = categories.length ? categories.map((c, i) => ({ v: i, s: c })) : [x0, (x0 + x1) / 2, x1].map((v) => ({ v, s: logX ? fmt(10 ** v) : fmt(v) }));
  return `<svg width="${W}" height="${H}" xmlns="http://www.w3.org/2000/svg">
<text x="${L}" y="16" font-weight="bold">${escapeHtml(title)}</text>
<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#888"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#888"/>
${xTicks.map((t) => `<text x="${px(t.v)}" y="${H - B + 14}" font-size="10" text-anchor="middle">${escapeHtml(t.s)}</text>`).join("")}
${[y0, (y0 + y1) / 2, y1].map((v) => `<text x="${L - 4}" y="${py(v) + 3}" font-size="10" text-anchor="end">${fmt(v)}</text>`).join("")}
<text x="${(L + W - R) / 2}" y="${H - 4}" font-size="11" text-anchor="middle">${escapeHtml(xLabel)}${logX ? " (log)" : ""}</text>
${pts.map((p) => `<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="3" fill="#3b6fb6" fill-opacity="0.7"/>`).join("")}
${line.length ? `<polyline fill="none" stroke="#d9534f" stroke-width="1.5" points="${line.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(" ")}"/>` : ""}
</svg>`;
}
