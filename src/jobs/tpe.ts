// The Tree-structured Parzen Estimator, as Optuna's TPESampler does it by default (univariate):
// trials are split into the best gamma(n) = min(ceil(0.1 n), 25) ("below") and the rest ("above");
// for each parameter a Parzen estimator (a mixture of truncated normals, or of smoothed one-hots for
// a categorical, plus a prior over the whole range) is fitted to each group, 24 candidates are drawn
// from the "below" estimator l(x), and the one with the largest log l(x) - log g(x) is chosen.
// Kernel widths follow Optuna's: the larger gap to a neighbouring observation, clipped to
// [range / min(100, 1 + kernels), range] ("magic clip"), endpoints not considered; the prior is
// N(mid, range) with weight 1; older trials weigh less past 25 observations ("default weights").
// Running trials (constant liar) count as the worst: they go "above", so parallel workers spread out.

import type { Rng } from "../tensor/random.ts";
import { internalBounds, toExternal, toInternal, type Distribution, type ParamValue } from "./distributions.ts";

export interface TpeOptions {
  /** random trials before TPE starts (default 10) */
  nStartupTrials?: number;
  /** candidates drawn from l(x) per parameter (default 24) */
  nEiCandidates?: number;
  /** running trials count as the worst trials (default true) */
  constantLiar?: boolean;
  priorWeight?: number;
}

export const tpeGamma = (n: number) => Math.min(Math.ceil(0.1 * n), 25);

/** Optuna's default_weights: flat for the newest 25, a linear ramp for older ones. */
export function tpeWeights(n: number): number[] {
  if (n === 0) return [];
  if (n < 25) return new Array(n).fill(1);
  const ramp = Array.from({ length: n - 25 }, (_, i) => (n - 25 === 1 ? 1 / n : 1 / n + ((1 - 1 / n) * i) / (n - 26)));
  return [...ramp, ...new Array(25).fill(1)];
}

const SQRT2 = Math.SQRT2;
const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

/** erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7: ample for ranking candidates). */
function erf(x: number): number {
  const s = Math.sign(x);
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-a * a);
  return s * y;
}

const ncdf = (z: number) => 0.5 * (1 + erf(z / SQRT2));

function logsumexp(xs: number[]): number {
  const m = Math.max(...xs);
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (const x of xs) s += Math.exp(x - m);
  return m + Math.log(s);
}

interface Numeric {
  kind: "numeric";
  mus: number[];
  sigmas: number[];
  weights: number[];
  low: number;
  high: number;
  step: number | null;
}
interface Categorical {
  kind: "categorical";
  /** probability of each choice under the mixture */
  probs: number[];
}
type Estimator = Numeric | Categorical;

function normalise(w: number[]): number[] {
  const s = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / s);
}

export function parzenEstimator(d: Distribution, observations: number[], obsWeights: number[], priorWeight: number): Estimator {
  if (d.type === "categorical") {
    const k = d.choices.length;
    const n = observations.length;
    const total = obsWeights.reduce((a, b) => a + b, 0) + priorWeight;
    const probs = new Array(k).fill(0);
    // each observation's kernel: the prior spread over all choices plus 1 on its own choice (Optuna 3)
    const rows = [...observations.map((o, i) => ({ o, w: obsWeights[i] })), { o: -1, w: priorWeight }];
    for (const { o, w } of rows) {
      const row = new Array(k).fill(priorWeight / (n + 1));
      if (o >= 0) row[o] += 1;
      const rs = row.reduce((a, b) => a + b, 0);
      for (let c = 0; c < k; c++) probs[c] += (w / total) * (row[c] / rs);
    }
    return { kind: "categorical", probs };
  }
  const { low, high, step } = internalBounds(d);
  const range = high - low;
  const n = observations.length;
  let sigmas: number[] = [];
  if (n > 0) {
    const order = observations.map((_, i) => i).sort((a, b) => observations[a] - observations[b]);
    const sorted = order.map((i) => observations[i]);
    const withEnds = [low, ...sorted, high];
    const sortedSigmas = sorted.map((_, i) => Math.max(withEnds[i + 1] - withEnds[i], withEnds[i + 2] - withEnds[i + 1]));
    // endpoints not considered: the outermost kernels take the gap to their inner neighbour
    if (withEnds.length >= 4) {
      sortedSigmas[0] = withEnds[2] - withEnds[1];
      sortedSigmas[n - 1] = withEnds[n] - withEnds[n - 1];
    }
    sigmas = new Array(n);
    order.forEach((i, r) => (sigmas[i] = sortedSigmas[r]));
  }
  const maxSigma = range;
  const minSigma = range / Math.min(100, 1 + n + 1);
  sigmas = sigmas.map((s) => Math.min(maxSigma, Math.max(minSigma, s)));
  return {
    kind: "numeric",
    mus: [...observations, (low + high) / 2],
    sigmas: [...sigmas, range],
    weights: normalise([...obsWeights, priorWeight]),
    low, high, step,
  };
}

function sampleEstimator(e: Estimator, rng: Rng): number {
  let u = rng.next();
  if (e.kind === "categorical") {
    for (let c = 0; c < e.probs.length; c++) if ((u -= e.probs[c]) < 0) return c;
    return e.probs.length - 1;
  }
  let i = 0;
  while (i < e.weights.length - 1 && (u -= e.weights[i]) >= 0) i++;
  // a truncated normal by rejection (kernel centres lie in the range and sigma >= range / 100: quick)
  for (let tries = 0; tries < 1000; tries++) {
    const x = rng.normal(e.mus[i], e.sigmas[i]);
    if (x >= e.low && x <= e.high) return x;
  }
  return Math.min(e.high, Math.max(e.low, e.mus[i]));
}

function logPdf(e: Estimator, x: number): number {
  if (e.kind === "categorical") return Math.log(e.probs[x]);
  const terms = e.mus.map((mu, i) => {
    const s = e.sigmas[i];
    const mass = ncdf((e.high - mu) / s) - ncdf((e.low - mu) / s);
    let lp: number;
    if (e.step !== null) {
      // a discrete value: the kernel's probability of its bin
      const p = ncdf((x + e.step / 2 - mu) / s) - ncdf((x - e.step / 2 - mu) / s);
      lp = Math.log(Math.max(p, 1e-300));
    } else {
      const z = (x - mu) / s;
      lp = -0.5 * z * z - LOG_SQRT_2PI - Math.log(s);
    }
    return Math.log(e.weights[i]) + lp - Math.log(Math.max(mass, 1e-300));
  });
  return logsumexp(terms);
}

/** A TPE draw for one parameter given the below/above observations (internal numbers, oldest first). */
export function tpeSample(d: Distribution, below: number[], above: number[], rng: Rng, { nEiCandidates = 24, priorWeight = 1 }: TpeOptions = {}): ParamValue {
  const l = parzenEstimator(d, below, tpeWeights(below.length), priorWeight);
  const g = parzenEstimator(d, above, tpeWeights(above.length), priorWeight);
  let best = NaN;
  let bestScore = -Infinity;
  for (let c = 0; c < nEiCandidates; c++) {
    let x = sampleEstimator(l, rng);
    // a discrete candidate is scored at its grid point
    if (l.kind === "numeric" && l.step !== null) x = toInternal(d, toExternal(d, x));
    const score = logPdf(l, x) - logPdf(g, x);
    if (score > bestScore || Number.isNaN(best)) {
      best = x;
      bestScore = score;
    }
  }
  return toExternal(d, best);
}
