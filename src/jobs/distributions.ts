// Search-space distributions (Optuna's FloatDistribution, IntDistribution,
// CategoricalDistribution) and what samplers need of them: the "internal" number a sampler works
// with (log of the value on a log scale, the index of a categorical choice), back to a value, and
// a uniform draw.

import type { Rng } from "../tensor/random.ts";

export type ParamValue = number | string | boolean | null;

export type Distribution =
  | { type: "float"; low: number; high: number; log: boolean; step: number | null }
  | { type: "int"; low: number; high: number; log: boolean; step: number }
  | { type: "categorical"; choices: ParamValue[] };

export function floatDistribution(name: string, low: number, high: number, { log = false, step = null }: { log?: boolean; step?: number | null } = {}): Distribution {
  if (!(Number.isFinite(low) && Number.isFinite(high) && low <= high)) throw new Error(`[study] ${name}: need low <= high (got ${low}, ${high})`);
  if (log && low <= 0) throw new Error(`[study] ${name}: a log scale needs low > 0 (got ${low})`);
  if (log && step !== null) throw new Error(`[study] ${name}: step and log cannot be used together`);
  if (step !== null && !(step > 0)) throw new Error(`[study] ${name}: step must be > 0 (got ${step})`);
  // Optuna: with a step, high is lowered to the last point of the grid
  const top = step !== null ? low + Math.floor((high - low) / step + 1e-9) * step : high;
  return { type: "float", low, high: top, log, step };
}

export function intDistribution(name: string, low: number, high: number, { log = false, step = 1 }: { log?: boolean; step?: number } = {}): Distribution {
  if (!(Number.isInteger(low) && Number.isInteger(high) && low <= high)) throw new Error(`[study] ${name}: need integers low <= high (got ${low}, ${high})`);
  if (log && low < 1) throw new Error(`[study] ${name}: a log scale needs low >= 1 (got ${low})`);
  if (log && step !== 1) throw new Error(`[study] ${name}: step and log cannot be used together`);
  if (!(Number.isInteger(step) && step >= 1)) throw new Error(`[study] ${name}: step must be a positive integer (got ${step})`);
  return { type: "int", low, high: low + Math.floor((high - low) / step) * step, log, step };
}

export function categoricalDistribution(name: string, choices: readonly ParamValue[]): Distribution {
  if (!Array.isArray(choices) || choices.length === 0) throw new Error(`[study] ${name}: choices must be a non-empty list`);
  for (const c of choices) {
    if (c !== null && !["number", "string", "boolean"].includes(typeof c)) throw new Error(`[study] ${name}: a choice must be a number, string, boolean or null (got ${JSON.stringify(c)})`);
  }
  return { type: "categorical", choices: [...choices] };
}

export function sameDistribution(a: Distribution, b: Distribution): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The number a sampler models: log(value) on a log scale, the choice's index for a categorical. */
export function toInternal(d: Distribution, value: ParamValue): number {
  if (d.type === "categorical") return d.choices.findIndex((c) => c === value);
  return d.log ? Math.log(value as number) : (value as number);
}

/** A model number back to a value on the distribution (rounded to its step, clipped to its range). */
export function toExternal(d: Distribution, x: number): ParamValue {
  if (d.type === "categorical") return d.choices[Math.max(0, Math.min(d.choices.length - 1, Math.round(x)))];
  let v = d.log ? Math.exp(x) : x;
  if (d.type === "int") v = d.low + Math.round((v - d.low) / d.step) * d.step;
  else if (d.step !== null) v = d.low + Math.round((v - d.low) / d.step) * d.step;
  v = Math.min(d.high, Math.max(d.low, v));
  // round off float noise from stepping (0.1 + 2 * 0.1)
  return d.type === "float" && d.step !== null ? Number(v.toPrecision(12)) : v;
}

/** The range a sampler models, in internal numbers; discrete ranges widened by half a step each side. */
export function internalBounds(d: Exclude<Distribution, { type: "categorical" }>): { low: number; high: number; step: number | null } {
  if (d.log) {
    const half = d.type === "int" ? 0.5 : 0;
    return { low: Math.log(d.low - half), high: Math.log(d.high + half), step: null };
  }
  const step = d.type === "int" ? d.step : d.step;
  const half = step !== null ? step / 2 : 0;
  return { low: d.low - half, high: d.high + half, step };
}

/** A uniform draw (log-uniform on a log scale). */
export function sampleUniform(d: Distribution, rng: Rng): ParamValue {
  if (d.type === "categorical") return d.choices[Math.floor(rng.next() * d.choices.length)];
  const { low, high } = internalBounds(d);
  return toExternal(d, low + rng.next() * (high - low));
}
