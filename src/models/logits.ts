// Which positions a causal LM projects onto the vocabulary: all of them (training, scoring) or only
// the last few (generation reads one), as HF's logits_to_keep. Projecting a 2,000-token prompt
// onto a 150k vocabulary costs more than the rest of the prefill; keeping one position does not.
import type { Tensor } from "../tensor/tensor.ts";

/** x [B, T, C] narrowed to its last k positions (k = 0 or k >= T: all of them). */
export function keepLast(x: Tensor, k: number): Tensor {
  if (!Number.isInteger(k) || k < 0) throw new Error(`logitsToKeep must be an integer >= 0, got ${k}`);
  const T = x.shape[1];
  return k === 0 || k >= T ? x : x.narrow(1, T - k, k);
}
