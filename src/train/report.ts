// The HTML report of a run: one self-contained file (inline SVG, no script, no network) with the
// loss and val loss, learning rate, gradient norm, tokens/s, per-phase time (stacked), per-loader
// sampling counts and the per-epoch summary table. Each plot is an <svg data-plot="...">.

import type { MetricRecord } from "./metrics.ts";
import type { RunSummary } from "./loggers.ts";

type Series = { name: string; points: [number, number][]; color: string };

const W = 560, H = 270, L = 56, R = 16, T = 40, B = 36;

export function htmlReport(run: RunSummary): string {
  const recs = run.records;
  const pick = (key: string) => recs.filter((r) => typeof r[key] === "number" && Number.isFinite(r[key] as number)).map((r) => [r.step, r[key] as number] as [number, number]);
  const phases = ["data", "forward", "backward", "optimizer"];
  const phaseSeries = phases.map((p, i) => ({
    name: p,
    color: ["#8c8c8c", "#1f77b4", "#ff7f0e", "#2ca02c"][i],
    points: recs.filter((r) => Object.keys(r).some((k) => k.endsWith(`/time_${p}_ms`))).map((r) => [r.step, sumKeys(r, `/time_${p}_ms`)] as [number, number]),
  }));
  const plots = [
    linePlot("loss", "loss", [{ name: "train", points: pick("loss"), color: "#1f77b4" }, { name: "val", points: pick("val_loss"), color: "#d62728" }]),
    linePlot("learning_rate", "learning rate", [{ name: "lr", points: pick("lr"), color: "#9467bd" }]),
    linePlot("grad_norm", "gradient norm (before clipping)", [{ name: "grad norm", points: pick("grad_norm"), color: "#8c564b" }]),
    linePlot("tokens_per_s", "tokens/s", [{ name: "tokens/s", points: pick("tokens_per_s"), color: "#17becf" }]),
    stackedPlot("phase_time", "time per batch by phase (ms, stacked)", phaseSeries),
    barPlot("sampling_counts", "batches drawn per loader", run.samplingCounts),
  ];
  const table = run.summary.rows.length
    ? `<table><tr>${run.summary.columns.map((c) => `<th>${esc(c)}</th>`).join("")}</tr>${run.summary.rows.map((r) => `<tr>${run.summary.columns.map((c) => `<td>${r[c] === undefined ? "" : fmt(r[c])}</td>`).join("")}</tr>`).join("")}</table>`
    : "<p>no completed epoch</p>";
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>kiln training report</title>
<style>body{font-family:sans-serif;margin:24px;color:#222}h1{font-size:20px}.grid{display:flex;flex-wrap:wrap;gap:16px}
svg{background:#fff;border:1px solid #ddd}table{border-collapse:collapse;margin-top:16px}td,th{border:1px solid #ccc;padding:3px 8px;font-size:12px;text-align:right}</style>
</head><body><h1>kiln training report</h1>
<p>${run.lossHistory.length} steps logged; final loss ${fmt(run.lossHistory.at(-1) ?? NaN)}</p>
<div class="grid">${plots.join("\n")}</div>
<h2>per-epoch summary</h2>${table}
</body></html>
`;
}

function sumKeys(r: MetricRecord, suffix: string): number {
  let s = 0;
  for (const [k, v] of Object.entries(r)) if (k.endsWith(suffix) && typeof v === "number") s += v;
  return s;
}

function frame(id: string, title: string, body: string, legend: { name: string; color: string }[]): string {
  const keys = legend.map((s, i) => `<text x="${L + 8 + i * 110}" y="${T - 8}" fill="${s.color}">■ ${esc(s.name)}</text>`).join("");
  return `<svg data-plot="${id}" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-size="11"><text x="${L}" y="14" font-weight="bold">${esc(title)}</text>${keys}${body}</svg>`;
}

function axes(xMin: number, xMax: number, yMin: number, yMax: number): { px: (x: number) => number; py: (y: number) => number; svg: string } {
  const xs = xMax - xMin || 1, ys = yMax - yMin || 1;
  const px = (x: number) => L + ((W - L - R) * (x - xMin)) / xs;
  const py = (y: number) => H - B - ((H - T - B) * (y - yMin)) / ys;
  const ticks = [0, 0.5, 1].map((f) => `<text x="${L - 4}" y="${py(yMin + f * ys) + 4}" text-anchor="end">${fmt(yMin + f * ys)}</text>`).join("");
  const xt = [0, 0.5, 1].map((f) => `<text x="${px(xMin + f * xs)}" y="${H - B + 14}" text-anchor="middle">${Math.round(xMin + f * xs)}</text>`).join("");
  return { px, py, svg: `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#999"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#999"/>${ticks}${xt}<text x="${(W + L) / 2}" y="${H - 6}" text-anchor="middle">step</text>` };
}

function linePlot(id: string, title: string, series: Series[]): string {
  const all = series.flatMap((s) => s.points);
  if (!all.length) return frame(id, title, `<text x="${L}" y="${H / 2}">no data</text>`, series);
  const { px, py, svg } = axes(Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0])), Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1])));
  const paths = series.filter((s) => s.points.length).map((s) => `<path class="series" d="${s.points.map(([x, y], i) => `${i ? "L" : "M"}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(" ")}" fill="none" stroke="${s.color}" stroke-width="1.5"/>`);
  return frame(id, title, svg + paths.join(""), series);
}

function stackedPlot(id: string, title: string, series: Series[]): string {
  const steps = [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  if (!steps.length) return frame(id, title, `<text x="${L}" y="${H / 2}">no profile (profileTraining off)</text>`, series);
  const value = (s: Series, step: number) => s.points.find((p) => p[0] === step)?.[1] ?? 0;
  const tops = steps.map((st) => series.reduce((a, s) => a + value(s, st), 0));
  const { px, py, svg } = axes(steps[0], steps.at(-1)!, 0, Math.max(...tops));
  const bw = Math.max(2, (W - L - R) / steps.length - 2);
  const bars: string[] = [];
  for (const st of steps) {
    let base = 0;
    for (const s of series) {
      const v = value(s, st);
      bars.push(`<rect class="series" x="${(px(st) - bw / 2).toFixed(1)}" y="${py(base + v).toFixed(1)}" width="${bw.toFixed(1)}" height="${(py(base) - py(base + v)).toFixed(1)}" fill="${s.color}"/>`);
      base += v;
    }
  }
  return frame(id, title, svg + bars.join(""), series);
}

function barPlot(id: string, title: string, counts: Record<string, number>): string {
  const entries = Object.entries(counts);
  if (!entries.length) return frame(id, title, `<text x="${L}" y="${H / 2}">no data</text>`, []);
  const max = Math.max(...entries.map(([, v]) => v)) || 1;
  const bw = (W - L - R) / entries.length;
  const bars = entries.map(([name, v], i) => {
    const h = ((H - T - B) * v) / max;
    return `<rect class="series" x="${(L + i * bw + 4).toFixed(1)}" y="${(H - B - h).toFixed(1)}" width="${(bw - 8).toFixed(1)}" height="${h.toFixed(1)}" fill="#1f77b4"/><text x="${(L + i * bw + bw / 2).toFixed(1)}" y="${H - B + 14}" text-anchor="middle">${esc(name)} (${v})</text>`;
  });
  return frame(id, title, `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#999"/>` + bars.join(""), []);
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) < 1e-3 ? v.toExponential(2) : v.toFixed(4);
}

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
}
