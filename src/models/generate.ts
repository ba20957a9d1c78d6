// Text generation from a language model: autoregressive sampling with temperature and top-k,
// cropping the context to the model's block size. (Recomputes the whole context each step; the
// KV-cache decoder for pretrained models builds on this interface.)

import type { Tensor } from "../tensor/tensor.ts";
import { fromArray } from "../tensor/tensor.ts";
import { scope } from "../tensor/memory.ts";
import { noGrad } from "../autograd/tape.ts";
import { Rng } from "../tensor/random.ts";

export interface CausalLM {
  forward(idx: Tensor): Tensor; // [B, T] -> [B, T, V]
  readonly config: { blockSize: number; vocabSize: number };
  eval(): unknown;
  train(flag?: boolean): unknown;
}

export interface SampleOptions {
  maxNewTokens: number;
  /** 0 = greedy */
  temperature?: number;
  topK?: number;
  rng?: Rng;
}

/** Continues `prompt` (token ids) by sampling; returns only the new tokens. */
export async function sample(model: CausalLM, prompt: readonly number[], { maxNewTokens, temperature = 1, topK, rng = Rng.global }: SampleOptions): Promise<number[]> {
  const ids = [...prompt];
  if (ids.length === 0) ids.push(0);
  const out: number[] = [];
  model.eval();
  try {
    for (let i = 0; i < maxNewTokens; i++) {
      const context = ids.slice(-model.config.blockSize);
      const logits = scope(() =>
        noGrad(() => {
          const x = fromArray(Int32Array.from(context), [1, context.length], { dtype: "i32" });
          const all = model.forward(x); // [1, T, V]
          return all.narrow(1, context.length - 1, 1); // [1, 1, V]
        }),
      );
      const row = (await logits.data()) as Float32Array;
      logits.dispose();
      const next = pick(row, temperature, topK, rng);
      ids.push(next);
      out.push(next);
    }
  } finally {
    model.train();
  }
  return out;
}

/** Samples an index from logits with temperature and top-k (greedy when temperature is 0). */
export function pick(logits: Float32Array, temperature: number, topK: number | undefined, rng: Rng): number {
  if (temperature <= 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  let cutoff = -Infinity;
  if (topK && topK < logits.length) cutoff = [...logits].sort((a, b) => b - a)[topK - 1];
  let max = -Infinity;
  for (const v of logits) if (v >= cutoff && v > max) max = v;
  const probs = new Float64Array(logits.length);
  let total = 0;
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] < cutoff) continue;
    probs[i] = Math.exp((logits[i] - max) / temperature);
    total += probs[i];
  }
  let u = rng.next() * total;
  for (let i = 0; i < probs.length; i++) {
    u -= probs[i];
    if (u <= 0 && probs[i] > 0) return i;
  }
  return probs.findLastIndex((p) => p > 0);
}
