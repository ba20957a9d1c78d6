// A token stream for language-model training (nanoGPT's get_batch): the whole text tokenized
// once, split 90/10 into train and val, and batches of B random windows of T+1 tokens — inputs
// x = window[0:T], targets y = window[1:T+1] — drawn with a seeded RNG.

import type { Backend } from "../backend/backend.ts";
import { Rng } from "../tensor/random.ts";
import { fromArray, type Tensor } from "../tensor/tensor.ts";
import { UserError } from "../util/errors.ts";

export type Split = "train" | "val";

export interface Batch {
  x: Tensor; // [B, T] i32
  y: Tensor; // [B, T] i32
}

export class TokenDataset {
  readonly train: Int32Array;
  readonly val: Int32Array;

  /** `tokens`: the whole corpus; the first trainFraction of it trains, the rest validates. */
  constructor(tokens: Int32Array, readonly blockSize: number, trainFraction = 0.9) {
    const cut = Math.floor(tokens.length * trainFraction);
    this.train = tokens.subarray(0, cut);
    this.val = tokens.subarray(cut);
    for (const [name, part] of [["train", this.train], ["val", this.val]] as const) {
      if (part.length <= blockSize) {
        throw new UserError(`[dataset] the ${name} split has ${part.length} tokens, fewer than blockSize + 1 = ${blockSize + 1}: use more text or a smaller blockSize`);
      }
    }
  }

  /** B random windows from `split` as i32 tensors x, y [B, T]. */
  batch(split: Split, batchSize: number, rng: Rng, backend?: Backend): Batch {
    const data = split === "train" ? this.train : this.val;
    const T = this.blockSize;
    const x = new Int32Array(batchSize * T);
    const y = new Int32Array(batchSize * T);
    for (let b = 0; b < batchSize; b++) {
      const start = rng.int(data.length - T);
      x.set(data.subarray(start, start + T), b * T);
      y.set(data.subarray(start + 1, start + T + 1), b * T);
    }
    return {
      x: fromArray(x, [batchSize, T], { dtype: "i32", backend }),
      y: fromArray(y, [batchSize, T], { dtype: "i32", backend }),
    };
  }
}
