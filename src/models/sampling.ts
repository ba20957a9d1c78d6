// Next-token choice on the host, in float64: the logits processors and warpers of Hugging Face
// transformers' generate, in its order — repetition penalty, then (when sampling) temperature,
// top-k, top-p — followed by argmax (greedy) or one seeded multinomial draw.
// Not here: the model loop (generate.ts) or text (detokenizer.ts).
// Reference: transformers generation/logits_process.py (RepetitionPenaltyLogitsProcessor,
// TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper; min_tokens_to_keep = 1).

import { Rng } from "../tensor/random.ts";

/** How one token is chosen from a row of logits. */
export interface SamplingParams {
  /** 0 = greedy (argmax); otherwise logits are divided by it before sampling */
  temperature: number;
  /** keep the k highest logits (ties with the k-th kept); 0 = off */
  topK: number;
  /** keep the smallest most-likely set with probability > 1 − topP (HF's rule); 1 = off */
  topP: number;
  /** HF repetition penalty for tokens already present: positive logits / p, negative · p; 1 = off */
  repetitionPenalty: number;
}

export const GREEDY: SamplingParams = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1 };

/**
 * The token chosen after `previous` (prompt + generated ids, for the repetition penalty).
 * @example pickToken(new Float32Array([0.1, 2, 0.3]), GREEDY, [], rng) // 1
 */
export function pickToken(logits: ArrayLike<number>, params: SamplingParams, previous: Iterable<number>, rng: Rng): number {
  const scores = processLogits(logits, params, previous);
  if (params.temperature <= 0) return argmax(scores);
  return sampleIndex(softmax(scores), rng);
}

/**
 * The distribution `pickToken` samples from (greedy: one-hot on the argmax), float64 — for tests
 * and for anyone who wants the probabilities.
 */
export function tokenProbs(logits: ArrayLike<number>, params: SamplingParams, previous: Iterable<number>): Float64Array {
  const scores = processLogits(logits, params, previous);
  if (params.temperature > 0) return softmax(scores);
  const p = new Float64Array(scores.length);
  p[argmax(scores)] = 1;
  return p;
}

/** Logits after the penalty and (when sampling) the warpers; filtered-out entries are −∞. A float64 copy. */
export function processLogits(logits: ArrayLike<number>, params: SamplingParams, previous: Iterable<number>): Float64Array {
  const scores = ArrayBuffer.isView(logits) ? new Float64Array(logits as unknown as Float32Array) : Float64Array.from(logits);
  checkParams(params, scores.length);
  if (params.repetitionPenalty !== 1) applyRepetitionPenalty(scores, previous, params.repetitionPenalty);
  if (params.temperature > 0) {
    if (params.temperature !== 1) applyTemperature(scores, params.temperature);
    if (params.topK > 0) applyTopK(scores, params.topK);
    if (params.topP < 1) applyTopP(scores, params.topP);
  }
  return scores;
}

/** HF RepetitionPenaltyLogitsProcessor: for every distinct id in `previous`, s < 0 ? s·p : s/p. In place. */
export function applyRepetitionPenalty(scores: Float64Array, previous: Iterable<number>, penalty: number): void {
  const seen = new Set<number>();
  for (const id of previous) {
    if (seen.has(id) || id < 0 || id >= scores.length) continue;
    seen.add(id);
    const s = scores[id];
    scores[id] = s < 0 ? s * penalty : s / penalty;
  }
}

/** scores / temperature, in place. */
export function applyTemperature(scores: Float64Array, temperature: number): void {
  for (let i = 0; i < scores.length; i++) scores[i] /= temperature;
}

/** HF TopKLogitsWarper: entries below the k-th largest become −∞ (ties with it stay). In place. */
export function applyTopK(scores: Float64Array, k: number): void {
  if (k >= scores.length) return;
  const kth = kthLargest(scores, Math.max(k, 1));
  for (let i = 0; i < scores.length; i++) if (scores[i] < kth) scores[i] = -Infinity;
}

/**
 * HF TopPLogitsWarper: sort ascending, remove the entries whose cumulative probability (from the
 * least likely up) is <= 1 − topP, always keeping the most likely one. In place. Said from the top:
 * keep each token while the probability of the tokens more likely than it is < topP (ties in id
 * order, as torch's stable sort). Only the head of the distribution is sorted: the k most likely
 * tokens for k = 64, 256, ... until they hold topP.
 */
export function applyTopP(scores: Float64Array, topP: number): void {
  const probs = softmax(scores);
  let live = 0;
  for (let i = 0; i < scores.length; i++) if (scores[i] > -Infinity) live++;
  if (live <= 1) return;
  for (let k = 64; ; k *= 4) {
    const threshold = kthLargest(scores, Math.min(k, live));
    const head: number[] = [];
    for (let i = 0; i < scores.length; i++) if (scores[i] >= threshold) head.push(i); // every tie of the k-th too
    head.sort((a, b) => scores[b] - scores[a] || b - a); // descending; among ties the higher id first
    let before = 0; // probability of the tokens ahead in the order
    let keep = 0;
    while (keep < head.length && before < topP) before += probs[head[keep++]];
    if (before < topP && head.length < live) continue; // the head is too short to hold topP: widen it
    const kept = new Set(head.slice(0, Math.max(keep, 1)));
    for (let i = 0; i < scores.length; i++) if (!kept.has(i)) scores[i] = -Infinity;
    return;
  }
}

/** Softmax in float64 (−∞ entries get probability 0). */
export function softmax(scores: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < scores.length; i++) if (scores[i] > max) max = scores[i];
  const p = new Float64Array(scores.length);
  if (max === -Infinity || Number.isNaN(max)) throw new Error("[generate] every logit is -inf or NaN: nothing to sample");
  let total = 0;
  for (let i = 0; i < scores.length; i++) total += p[i] = Math.exp(scores[i] - max);
  for (let i = 0; i < p.length; i++) p[i] /= total;
  return p;
}

/** Index of the largest score (the first one among ties, as torch.argmax). */
export function argmax(scores: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i] > scores[best]) best = i;
  return best;
}

/** One draw from `probs` (summing to 1) with one rng.next(): inverse CDF, never a zero-probability index. */
export function sampleIndex(probs: Float64Array, rng: Rng): number {
  let u = rng.next();
  let last = -1;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] <= 0) continue;
    last = i;
    u -= probs[i];
    if (u < 0) return i;
  }
  return last; // rounding left u a hair above 0: the last possible index
}

/** The k-th largest value (1-based) by quickselect on a copy: O(V) on average. */
function kthLargest(scores: Float64Array, k: number): number {
  const a = new Float64Array(scores);
  const target = a.length - k; // its index in ascending order
  let lo = 0;
  let hi = a.length - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        const t = a[i];
        a[i++] = a[j];
        a[j--] = t;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return a[target];
  }
  return a[target];
}

/** Throws `[generate] ...` naming a parameter out of range. */
export function checkParams(p: SamplingParams, V = 1): void {
  if (!(p.temperature >= 0) || !Number.isFinite(p.temperature)) throw new Error(`[generate] temperature must be >= 0, got ${p.temperature}`);
  if (!Number.isInteger(p.topK) || p.topK < 0) throw new Error(`[generate] topK must be an integer >= 0, got ${p.topK}`);
  if (!(p.topP > 0 && p.topP <= 1)) throw new Error(`[generate] topP must be in (0, 1], got ${p.topP}`);
  if (!(p.repetitionPenalty > 0) || !Number.isFinite(p.repetitionPenalty)) throw new Error(`[generate] repetitionPenalty must be > 0, got ${p.repetitionPenalty}`);
  if (V === 0) throw new Error("[generate] empty logits row");
}
