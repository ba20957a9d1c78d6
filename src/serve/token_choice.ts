// Choosing one sequence's next token from its row of logits, with the OpenAI request knobs on top
// of kiln's sampling (sampling.ts: repetition penalty, temperature, top-k, top-p, seeded draw):
// logit_bias, presence and frequency penalties over the generated tokens, and the log-probabilities
// the API reports (of the model's raw distribution, as vLLM's default "raw_logprobs").
// Reference: OpenAI API "Parameter details" (frequency and presence penalties: mu[j] -= c[j]·α_f + (c[j] > 0)·α_p).

import { pickToken, type SamplingParams } from "../models/sampling.ts";
import type { Rng } from "../tensor/random.ts";

export interface TokenChoiceParams {
  sampling: SamplingParams;
  presencePenalty: number;
  frequencyPenalty: number;
  /** token id -> bias added to its logit (OpenAI logit_bias, −100..100) */
  logitBias: ReadonlyMap<number, number>;
  /** report the chosen token's log-probability and this many alternatives (null: none) */
  logprobs: number | null;
  rng: Rng;
}

export interface TokenLogprob {
  token: number;
  logprob: number;
  /** the most likely tokens at this step, best first */
  top: { token: number; logprob: number }[];
}

export interface Choice {
  token: number;
  logprob?: TokenLogprob;
}

/**
 * The next token after `context` (prompt + generated ids), with `counts` the number of times each
 * generated id occurred (for the presence and frequency penalties).
 */
export function chooseToken(logits: Float32Array, p: TokenChoiceParams, context: readonly number[], counts: ReadonlyMap<number, number>): Choice {
  let scores: Float32Array = logits;
  if (p.logitBias.size > 0 || (counts.size > 0 && (p.presencePenalty !== 0 || p.frequencyPenalty !== 0))) {
    scores = Float32Array.from(logits);
    for (const [id, bias] of p.logitBias) if (id < scores.length) scores[id] += bias;
    for (const [id, c] of counts) scores[id] -= c * p.frequencyPenalty + (c > 0 ? p.presencePenalty : 0);
  }
  const token = pickToken(scores, p.sampling, context, p.rng);
  return p.logprobs === null ? { token } : { token, logprob: logprobOf(logits, token, p.logprobs) };
}

/** log softmax(logits)[token] and the k largest entries, in float64. */
export function logprobOf(logits: ArrayLike<number>, token: number, k: number): TokenLogprob {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const lse = max + Math.log(sum);
  const top: { token: number; logprob: number }[] = [];
  if (k > 0) {
    // a partial selection: keep the k best seen so far, sorted
    for (let i = 0; i < logits.length; i++) {
      const v = logits[i];
      if (top.length < k || v > top[top.length - 1].logprob) {
        let j = top.length < k ? top.length : k - 1;
        if (top.length < k) top.push({ token: i, logprob: v });
        while (j > 0 && top[j - 1].logprob < v) {
          top[j] = top[j - 1];
          j--;
        }
        top[j] = { token: i, logprob: v };
      }
    }
    for (const t of top) t.logprob -= lse;
  }
  return { token, logprob: logits[token] - lse, top };
}
