// evaluateModel: mean next-token loss, perplexity and tokens/s of a causal LM over a token stream,
// in non-overlapping windows of the model's context (or blockSize), without gradients.

import { noGrad } from "../autograd/tape.ts";
import { fromArray } from "../tensor/tensor.ts";
import type { Module } from "../nn/module.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { TokenWindows, type TokenArray } from "./text_dataset.ts";

export interface EvaluateOptions {
  blockSize: number;
  batchSize?: number;
  /** stop after this many batches (default: all) */
  maxBatches?: number;
}

export interface Evaluation {
  loss: number;
  perplexity: number;
  tokens: number;
  tokensPerS: number;
}

type LM = Module & { loss(x: Tensor, y: Tensor): Tensor };

export async function evaluateModel(model: LM, tokens: TokenArray, { blockSize, batchSize = 8, maxBatches = Infinity }: EvaluateOptions): Promise<Evaluation> {
  const windows = new TokenWindows(tokens, blockSize, blockSize);
  if (windows.length === 0) throw new RangeError(`evaluate: ${tokens.length} tokens make no window of ${blockSize} (+1)`);
  const wasTraining = model.training;
  model.eval();
  let sum = 0;
  let count = 0;
  const t0 = performance.now();
  try {
    for (let b = 0; b * batchSize < windows.length && b < maxBatches; b++) {
      const rows = Math.min(batchSize, windows.length - b * batchSize);
      const x = new Int32Array(rows * blockSize);
      const y = new Int32Array(rows * blockSize);
      for (let r = 0; r < rows; r++) {
        const w = windows.get(b * batchSize + r);
        x.set(w.x, r * blockSize);
        y.set(w.y, r * blockSize);
      }
      const xt = fromArray(x, [rows, blockSize]);
      const yt = fromArray(y, [rows, blockSize]);
      const loss = noGrad(() => model.loss(xt, yt));
      sum += (await loss.data())[0] * rows * blockSize;
      count += rows * blockSize;
      loss.dispose(), xt.dispose(), yt.dispose();
    }
  } finally {
    if (wasTraining) model.train();
  }
  const secs = (performance.now() - t0) / 1000;
  const loss = sum / count;
  return { loss, perplexity: Math.exp(loss), tokens: count, tokensPerS: count / secs };
}
