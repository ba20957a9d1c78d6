// Pruners: whether a running trial should stop early, from what it reported (trial.report(value,
// step)) and what other trials reported. median: stop when the trial's best value so far is worse
// than the median of the finished trials' values at the same step (Optuna's MedianPruner).
// successive halving: at rungs min_resource * eta^k steps, keep only the top 1/eta of the trials
// that reached the rung (Optuna's SuccessiveHalvingPruner, asynchronous).

import type { Direction, FrozenTrial } from "./samplers.ts";

export interface Pruner {
  readonly name: string;
  /** `trial` includes the values reported so far; `history` the other trials */
  prune(trial: FrozenTrial, history: FrozenTrial[], direction: Direction): boolean;
}

const steps = (t: FrozenTrial) => Object.keys(t.intermediate).map(Number).sort((a, b) => a - b);

export class NopPruner implements Pruner {
  readonly name = "none";
  prune(): boolean {
    return false;
  }
}

export class MedianPruner implements Pruner {
  readonly name = "median";
  constructor(readonly o: { nStartupTrials?: number; nWarmupSteps?: number; intervalSteps?: number } = {}) {}

  prune(trial: FrozenTrial, history: FrozenTrial[], direction: Direction): boolean {
    const { nStartupTrials = 5, nWarmupSteps = 0, intervalSteps = 1 } = this.o;
    const s = steps(trial);
    if (!s.length) return false;
    const step = s[s.length - 1];
    if (step < nWarmupSteps || (step - nWarmupSteps) % intervalSteps !== 0) return false;
    const done = history.filter((t) => t.state === "complete" && t.number !== trial.number);
    if (done.length < nStartupTrials) return false;
    const better = (a: number, b: number) => (direction === "minimize" ? a < b : a > b);
    let best = NaN;
    for (const k of s) {
      const v = trial.intermediate[k];
      if (!Number.isNaN(v) && (Number.isNaN(best) || better(v, best))) best = v;
    }
    if (Number.isNaN(best)) return true;
    const others = done.map((t) => t.intermediate[step]).filter((v): v is number => typeof v === "number" && !Number.isNaN(v)).sort((a, b) => a - b);
    if (!others.length) return false;
    const m = others.length % 2 ? others[(others.length - 1) / 2] : (others[others.length / 2 - 1] + others[others.length / 2]) / 2;
    return better(m, best);
  }
}

export class SuccessiveHalvingPruner implements Pruner {
  readonly name = "successive_halving";
  constructor(readonly o: { minResource?: number; reductionFactor?: number; minEarlyStoppingRate?: number } = {}) {}

  /** The trial's value at each rung it has reached: its first report at or after the rung's step. */
  #rungValues(t: FrozenTrial): number[] {
    const { minResource = 1, reductionFactor = 4, minEarlyStoppingRate = 0 } = this.o;
    const s = steps(t);
    const out: number[] = [];
    for (let k = 0; ; k++) {
      const rungStep = minResource * reductionFactor ** (minEarlyStoppingRate + k);
      const at = s.find((x) => x >= rungStep);
      if (at === undefined) return out;
      out.push(t.intermediate[at]);
    }
  }

  prune(trial: FrozenTrial, history: FrozenTrial[], direction: Direction): boolean {
    const eta = this.o.reductionFactor ?? 4;
    const mine = this.#rungValues(trial);
    if (!mine.length) return false;
    const rung = mine.length - 1;
    const value = mine[rung];
    if (Number.isNaN(value)) return true;
    const competing = [value, ...history.filter((t) => t.number !== trial.number).map((t) => this.#rungValues(t)[rung]).filter((v): v is number => typeof v === "number" && !Number.isNaN(v))];
    competing.sort((a, b) => (direction === "minimize" ? a - b : b - a));
    // the top 1/eta go on; with fewer than eta competitors, only the best
    const idx = Math.max(0, Math.floor(competing.length / eta) - 1);
    return direction === "minimize" ? value > competing[idx] : value < competing[idx];
  }
}

export type PrunerSpec = "median" | "successive_halving" | "none" | Pruner;

export function makePruner(spec: PrunerSpec | undefined): Pruner {
  if (spec && typeof spec === "object") return spec;
  switch (spec ?? "none") {
    case "median":
      return new MedianPruner();
    case "successive_halving":
      return new SuccessiveHalvingPruner();
    case "none":
      return new NopPruner();
    default:
      throw new Error(`[study] unknown pruner ${JSON.stringify(spec)} (median, successive_halving, none, or a Pruner object)`);
  }
}
