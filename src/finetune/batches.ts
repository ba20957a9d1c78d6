// Batches of fine-tuning examples: right padding (causal attention never looks right, so padding
// at the end changes no real position and needs no attention mask), labels -100 on padding, the
// next-token shift done here; and an epoch sampler — every example once per epoch, in an order
// shuffled by the trainer's seeded RNG — behind the engine's batch-source seam.

import type { Backend } from "../backend/backend.ts";
import { fromArray, type Tensor } from "../tensor/tensor.ts";
import { Rng } from "../tensor/random.ts";
import { IGNORE_INDEX, shiftLabels } from "../train/losses.ts";
import type { PreferenceExample, SftExample } from "./data.ts";

export interface SftBatch {
  /** token ids [B, T] (i32) */
  x: Tensor;
  /** next-token targets [B, T] (i32, -100 where no loss is taken) */
  y: Tensor;
}

export interface PreferenceBatch extends SftBatch {
  /** rows [chosen 0..B−1, rejected 0..B−1]; completion tokens per row [2B] (for ipo's averages) */
  counts: Tensor;
  /** the examples' indices (for precomputed reference log-probs) */
  index: number[];
  /** [2B] precomputed reference log-probs, when the trainer has them */
  refLogps?: Tensor;
}

/** Pads SFT examples to the longest and shifts the labels. */
export function collateSft(examples: readonly SftExample[], padId: number, backend: Backend): SftBatch {
  const B = examples.length;
  const T = Math.max(1, ...examples.map((e) => e.ids.length));
  const ids = new Int32Array(B * T).fill(padId);
  const labels = new Int32Array(B * T).fill(IGNORE_INDEX);
  examples.forEach((e, b) => {
    ids.set(e.ids, b * T);
    labels.set(e.labels, b * T);
  });
  return {
    x: fromArray(ids, [B, T], { dtype: "i32", backend }),
    y: fromArray(shiftLabels(labels, B, T), [B, T], { dtype: "i32", backend }),
  };
}

export interface PreferenceLimits {
  /** keep the prompt's last maxPromptLength tokens (TRL keep_end for prompts) */
  maxPromptLength?: number | null;
  /** cut prompt + completion to maxLength tokens, from the completion's end */
  maxLength?: number | null;
}

/** prompt + completion rows with the prompt masked, after TRL's truncation. */
export function preferenceRows(e: PreferenceExample, limits: PreferenceLimits): SftExample[] {
  const prompt = limits.maxPromptLength ? e.prompt.subarray(Math.max(0, e.prompt.length - limits.maxPromptLength)) : e.prompt;
  return [e.chosen, e.rejected].map((completion) => {
    const room = limits.maxLength ? Math.max(1, limits.maxLength - prompt.length) : completion.length;
    const c = completion.subarray(0, room);
    const ids = new Int32Array(prompt.length + c.length);
    ids.set(prompt);
    ids.set(c, prompt.length);
    const labels = new Int32Array(ids.length).fill(IGNORE_INDEX);
    labels.set(c, prompt.length);
    return { ids, labels };
  });
}

/** Chosen rows then rejected rows, padded together. */
export function collatePreferences(examples: readonly PreferenceExample[], index: number[], padId: number, limits: PreferenceLimits, backend: Backend, refLogps?: Float32Array): PreferenceBatch {
  const rows = examples.map((e) => preferenceRows(e, limits));
  const ordered = [...rows.map((r) => r[0]), ...rows.map((r) => r[1])];
  const { x, y } = collateSft(ordered, padId, backend);
  // completion tokens counted as the loss counts them: the labels after the shift (the first is dropped)
  const counts = Float32Array.from(ordered, (r) => r.labels.subarray(1).reduce((n, l) => n + (l !== IGNORE_INDEX ? 1 : 0), 0));
  const batch: PreferenceBatch = { x, y, counts: fromArray(counts, [counts.length], { backend }), index };
  if (refLogps) {
    const B = examples.length;
    const ref = new Float32Array(2 * B);
    index.forEach((i, b) => {
      ref[b] = refLogps[2 * i];
      ref[B + b] = refLogps[2 * i + 1];
    });
    batch.refLogps = fromArray(ref, [2 * B], { backend });
  }
  return batch;
}

/**
 * Hands out index batches: epoch e visits every example once, in an order shuffled by a seeded RNG
 * of its own (seed, e), so the position alone — examples handed out so far — fixes what comes next
 * and a resumed run (skipTo) continues exactly, mid-epoch too. Evaluation ("val") goes through its
 * own list in order, from the start at each evaluation (each one brings a fresh RNG).
 */
export class EpochSampler {
  #consumed = 0;
  #orderEpoch = -1;
  #order: number[] = [];
  #valRng: Rng | null = null;
  #valAt = 0;

  constructor(readonly size: number, readonly valSize = 0, readonly seed = 0, readonly shuffle = true) {
    if (size === 0) throw new Error("[finetune] the training data has no examples");
  }

  /** the epoch the next example belongs to (0-based) */
  get epoch(): number {
    return Math.floor(this.#consumed / this.size);
  }

  /** Continue as if `consumed` examples had been handed out (resume). */
  skipTo(consumed: number): void {
    this.#consumed = consumed;
  }

  next(batchSize: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < batchSize; i++) {
      const epoch = this.epoch;
      if (epoch !== this.#orderEpoch) this.#order = this.#shuffled(epoch);
      out.push(this.#order[this.#consumed % this.size]);
      this.#consumed++;
    }
    return out;
  }

  nextVal(batchSize: number, rng: Rng): number[] {
    if (rng !== this.#valRng) {
      this.#valRng = rng;
      this.#valAt = 0;
    }
    const n = this.valSize || this.size;
    const out: number[] = [];
    for (let i = 0; i < Math.min(batchSize, n); i++) out.push(this.#valAt++ % n);
    return out;
  }

  #shuffled(epoch: number): number[] {
    this.#orderEpoch = epoch;
    const order = Array.from({ length: this.size }, (_, i) => i);
    if (!this.shuffle) return order;
    const rng = new Rng((this.seed * 7919 + epoch * 104729 + 1) >>> 0);
    for (let i = this.size - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    return order;
  }
}
