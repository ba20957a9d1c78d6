// Samplers: how a trial's next parameter value is chosen from the study's history. random
// (uniform, log-uniform on log scales), grid (every point of a given grid once, in random order),
// and tpe (Optuna's default; random for the first trials). Each trial draws from its own RNG,
// seeded from the sampler's seed and the trial number, so a study is reproducible in one process
// and parallel workers never repeat each other's draws.

import { Rng } from "../tensor/random.ts";
import { sampleUniform, toInternal, type Distribution, type ParamValue } from "./distributions.ts";
import { tpeGamma, tpeSample, type TpeOptions } from "./tpe.ts";

export type TrialState = "running" | "complete" | "pruned" | "fail" | "waiting";
export type Direction = "minimize" | "maximize";

/** A trial as samplers and pruners see it. */
export interface FrozenTrial {
  number: number;
  state: TrialState;
  params: Record<string, ParamValue>;
  distributions: Record<string, Distribution>;
  value: number | null;
  /** reported values by step */
  intermediate: Record<string, number>;
  userAttrs: Record<string, unknown>;
}

/** What a sampler sees of the trial it samples for. */
export interface SamplingContext {
  number: number;
  /** every other trial of the study, as loaded when this trial started */
  history: FrozenTrial[];
  direction: Direction;
  rng: Rng;
  /** this trial's own attributes (persisted with it) */
  attrs: Record<string, unknown>;
}

export interface Sampler {
  readonly name: string;
  sample(name: string, d: Distribution, ctx: SamplingContext): ParamValue;
  /** true when no new trial can add anything (a grid fully taken) */
  exhausted?(history: FrozenTrial[]): boolean;
  seed: number;
}

export class RandomSampler implements Sampler {
  readonly name = "random";
  constructor(readonly seed = 0) {}
  sample(_name: string, d: Distribution, ctx: SamplingContext): ParamValue {
    return sampleUniform(d, ctx.rng);
  }
}

/** Every combination of the grid once (random order); in parallel, points taken by running trials are skipped. */
export class GridSampler implements Sampler {
  readonly name = "grid";
  readonly #names: string[];
  readonly #grid: ParamValue[][];
  constructor(readonly searchSpace: Record<string, readonly ParamValue[]>, readonly seed = 0) {
    this.#names = Object.keys(searchSpace).sort();
    if (!this.#names.length) throw new Error("[study] the grid sampler needs a search space: { name: [values...] }");
    let grid: ParamValue[][] = [[]];
    for (const n of this.#names) {
      const values = searchSpace[n];
      if (!Array.isArray(values) || !values.length) throw new Error(`[study] grid ${n}: a non-empty list of values`);
      grid = grid.flatMap((g) => values.map((v) => [...g, v]));
    }
    this.#grid = grid;
  }

  get size(): number {
    return this.#grid.length;
  }

  #taken(history: FrozenTrial[]): Set<number> {
    return new Set(history.filter((t) => t.state !== "fail" && typeof t.userAttrs.grid_id === "number").map((t) => t.userAttrs.grid_id as number));
  }

  exhausted(history: FrozenTrial[]): boolean {
    return this.#taken(history).size >= this.#grid.length;
  }

  sample(name: string, d: Distribution, ctx: SamplingContext): ParamValue {
    const col = this.#names.indexOf(name);
    if (col < 0) throw new Error(`[study] the grid has no parameter ${JSON.stringify(name)} (it has ${this.#names.join(", ")})`);
    if (typeof ctx.attrs.grid_id !== "number") {
      const taken = this.#taken(ctx.history);
      const free = this.#grid.map((_, i) => i).filter((i) => !taken.has(i));
      const pool = free.length ? free : this.#grid.map((_, i) => i);
      ctx.attrs.grid_id = pool[Math.floor(ctx.rng.next() * pool.length)];
    }
    const value = this.#grid[ctx.attrs.grid_id as number][col];
    if (d.type === "categorical" ? !d.choices.includes(value) : typeof value !== "number" || value < d.low || value > d.high)
      throw new Error(`[study] grid value ${JSON.stringify(value)} of ${name} is outside the suggested distribution`);
    return value;
  }
}

export class TPESampler implements Sampler {
  readonly name = "tpe";
  readonly #o: Required<TpeOptions>;
  readonly #random: RandomSampler;
  constructor(readonly seed = 0, options: TpeOptions = {}) {
    this.#o = { nStartupTrials: options.nStartupTrials ?? 10, nEiCandidates: options.nEiCandidates ?? 24, constantLiar: options.constantLiar ?? true, priorWeight: options.priorWeight ?? 1 };
    this.#random = new RandomSampler(seed);
  }

  sample(name: string, d: Distribution, ctx: SamplingContext): ParamValue {
    const finished = ctx.history.filter((t) => t.state === "complete" || t.state === "pruned");
    if (finished.length < this.#o.nStartupTrials) return this.#random.sample(name, d, ctx);
    const sign = ctx.direction === "maximize" ? -1 : 1;
    // Optuna's split: complete trials by value, then pruned ones (further first, then by their last value), then running ones (the liar)
    const complete = ctx.history.filter((t) => t.state === "complete" && t.value !== null).sort((a, b) => sign * (a.value! - b.value!));
    const lastStep = (t: FrozenTrial) => Math.max(-Infinity, ...Object.keys(t.intermediate).map(Number));
    const pruned = ctx.history.filter((t) => t.state === "pruned").sort((a, b) => {
      const sa = lastStep(a), sb = lastStep(b);
      if (sa !== sb) return sb - sa;
      return sign * ((a.intermediate[sa] ?? Infinity) - (b.intermediate[sb] ?? Infinity));
    });
    const running = this.#o.constantLiar ? ctx.history.filter((t) => t.state === "running") : [];
    const ordered = [...complete, ...pruned, ...running];
    const nBelow = tpeGamma(ordered.length);
    const byNumber = (ts: FrozenTrial[]) => ts.filter((t) => name in t.params).sort((a, b) => a.number - b.number);
    // a categorical value no longer among the choices (index -1) is left out
    const obs = (ts: FrozenTrial[]) => byNumber(ts).map((t) => toInternal(d, t.params[name])).filter((x) => Number.isFinite(x) && (d.type !== "categorical" || x >= 0));
    return tpeSample(d, obs(ordered.slice(0, nBelow)), obs(ordered.slice(nBelow)), ctx.rng, this.#o);
  }
}

export type SamplerSpec = "random" | "grid" | "tpe" | Sampler;

export function makeSampler(spec: SamplerSpec | undefined, { seed = 0, searchSpace }: { seed?: number; searchSpace?: Record<string, readonly ParamValue[]> } = {}): Sampler {
  if (spec && typeof spec === "object") return spec;
  switch (spec ?? "tpe") {
    case "random":
      return new RandomSampler(seed);
    case "tpe":
      return new TPESampler(seed);
    case "grid":
      if (!searchSpace) throw new Error('[study] sampler "grid" needs a searchSpace ({ name: [values...] }) or new GridSampler(space)');
      return new GridSampler(searchSpace, seed);
    default:
      throw new Error(`[study] unknown sampler ${JSON.stringify(spec)} (random, grid, tpe, or a Sampler object)`);
  }
}

/** The RNG a trial draws from. */
export function trialRng(sampler: Sampler, number: number): Rng {
  return new Rng((Math.imul(sampler.seed + 1, 1000003) + number * 7919) >>> 0);
}
