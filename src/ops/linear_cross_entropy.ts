// The LM head and cross-entropy in one op, chunk by chunk of positions, so that training never
// holds the full [N, V] logits (Qwen2.5's 151,936-token vocabulary at 2048 positions is 1.2 GB of
// logits per sequence, and as much again for their gradient). Forward: per chunk, logits = h·Wᵀ + b,
// then the cross_entropy kernel; only the per-row loss and log-sum-exp (lse) are kept. Backward:
// per chunk, the logits are recomputed and cross_entropy_backward turns them (with the stored
// lse) into dlogits, which feed dHidden = dlogits·W and, when the head is trainable (full
// fine-tuning, a tied embedding), dW += dlogitsᵀ·h. Peak extra memory: one chunk's logits and
// dlogits. Only kernels of the kernel list run here, so it works on every backend. Same values
// as crossEntropy(linear(h, W, b), targets) up to f32 summation order.

import type { Tensor } from "../tensor/tensor.ts";
import { record } from "../autograd/tape.ts";
import { isAutocast, withAutocast } from "../tensor/mode.ts";
import { alloc, allocZeros, backendOf, launch } from "./dispatch.ts";
import { checkFloat } from "./elementwise.ts";
import { gemm } from "./matmul.ts";
import { copyKernel } from "./movement.ts";
import { checkIds, hostIds } from "./token_ids.ts";
import { fromArray } from "../tensor/tensor.ts";
import { reduceLosses, type CrossEntropyOptions } from "./loss.ts";

export interface LinearCrossEntropyOptions extends CrossEntropyOptions {
  /** the head's bias [V], if it has one */
  bias?: Tensor | null;
  /** positions per chunk (default: as many as keep one chunk's logits near 16M values, 64 MiB) */
  chunkSize?: number;
}

/** Logit values per chunk when no chunkSize is given. */
const CHUNK_VALUES = 1 << 24;

/**
 * crossEntropy(linear(hidden, weight, bias), targets) without the [N, V] logits: hidden [..., C],
 * weight [V, C] (nn.Linear's layout; a tied embedding as it is), targets i32 [...] with
 * ignoreIndex (default −100) masked. reduction "mean" (over counted targets, as Hugging Face's
 * causal LM loss), "sum", or "none" (per-position losses, 0 where masked: per-token log-probs).
 */
export function linearCrossEntropy(hidden: Tensor, weight: Tensor, targets: Tensor, { ignoreIndex = -100, reduction = "mean", bias = null, chunkSize }: LinearCrossEntropyOptions = {}): Tensor {
  const backend = backendOf("linear_cross_entropy", [hidden, weight, bias, targets]);
  checkFloat("linear_cross_entropy", hidden);
  if (weight.rank !== 2) throw new Error(`[linear_cross_entropy] weight must be [V, C], got ${weight.describe()}`);
  const [V, C] = weight.shape;
  if (hidden.shape[hidden.rank - 1] !== C) throw new Error(`[linear_cross_entropy] hidden ${hidden.describe()} does not end in the weight's ${C} features (${weight.describe()})`);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== V)) throw new Error(`[linear_cross_entropy] bias ${bias.describe()} should be [${V}]`);
  if (targets.dtype !== "i32") throw new Error(`[linear_cross_entropy] targets must be i32, got ${targets.describe()}`);
  const N = hidden.size / C;
  if (targets.size !== N || hidden.rank !== targets.rank + 1) {
    throw new Error(`[linear_cross_entropy] targets ${targets.describe()} do not match hidden ${hidden.describe()}`);
  }
  const rows = chunkSize ?? Math.max(1, Math.floor(CHUNK_VALUES / V));
  if (!(Number.isInteger(rows) && rows > 0)) throw new Error(`[linear_cross_entropy] chunkSize must be a positive integer, got ${chunkSize}`);
  checkIds("linear_cross_entropy", targets, V, "target", `${V} classes`, ignoreIndex);
  const autocast = isAutocast();
  const chunks = Array.from({ length: Math.ceil(N / rows) }, (_, i) => [i * rows, Math.min(rows, N - i * rows)] as const);

  const single = chunks.length === 1;
  // the chunks' targets and lse, kept for the backward (N values each): targets are cut on the host
  // where their values are there (a copy kernel moves f32 words, which need not keep i32 bits on a GPU)
  const ids = single ? null : hostIds(targets);
  const targetChunks = chunks.map(([start, n]) => (single ? targets : ids ? fromArray(ids.slice(start, start + n), [n], { dtype: "i32", backend }) : rowsOf(targets, start, n, 1)));
  const lseChunks: Tensor[] = [];
  // several chunks scatter-add their rows into zeros
  const loss = single ? alloc(backend, targets.shape) : allocZeros(backend, targets.shape);
  chunks.forEach(([start, n], i) => {
    const h = rowsOf(hidden, start, n, C);
    const logits = headLogits(h, weight, bias, n, V, C);
    const lossC = single ? loss : alloc(backend, [n]), lseC = alloc(backend, [n]);
    launch("cross_entropy", [logits, targetChunks[i]], [lossC, lseC], { N: n, V, ignoreIndex });
    lseChunks.push(lseC);
    logits.dispose();
    if (!single) putRows(lossC, loss, start, n);
    if (h !== hidden) h.dispose();
  });

  // dloss [...]: one gradient per position, 0 where masked (the kernel writes zero rows there)
  const backward = (dloss: Tensor, [needH, needW, needB]: readonly boolean[]): (Tensor | null)[] => withAutocast(autocast, () => {
    const dh = !needH ? null : single ? alloc(backend, hidden.shape) : allocZeros(backend, hidden.shape);
    const dw = needW ? alloc(backend, weight.shape) : null;
    const db = needB && bias ? alloc(backend, [V]) : null;
    chunks.forEach(([start, n], i) => {
      const h = rowsOf(hidden, start, n, C), g = rowsOf(dloss, start, n, 1);
      const logits = headLogits(h, weight, bias, n, V, C);
      const dlogits = alloc(backend, [n, V]);
      launch("cross_entropy_backward", [logits, targetChunks[i], lseChunks[i], g], [dlogits], { N: n, V, ignoreIndex });
      logits.dispose();
      // the first chunk writes dW and db, later ones add theirs in
      const first = i === 0;
      const gemmParams = { batch: 1, strideA: 0, strideB: 0, bias: null };
      if (dh) {
        const dhC = single ? dh : alloc(backend, [n, C]);
        gemm(dlogits, weight, dhC, { ...gemmParams, M: n, N: C, K: V, transA: false, transB: false }); // dlogits·W
        if (!single) putRows(dhC, dh, start * C, n * C);
      }
      if (dw) {
        const dwC = first ? dw : alloc(backend, [V, C]);
        gemm(dlogits, h, dwC, { ...gemmParams, M: V, N: C, K: n, transA: true, transB: false }); // dlogitsᵀ·h
        if (!first) addInto(dwC, dw);
      }
      if (db) {
        const dbC = first ? db : alloc(backend, [V]);
        launch("sum", [dlogits], [dbC], { outer: 1, len: n, inner: V }); // Σ_rows dlogits
        if (!first) addInto(dbC, db);
      }
      dlogits.dispose();
      if (h !== hidden) h.dispose();
      if (g !== dloss) g.dispose();
    });
    return [dh, dw, db, null];
  });
  record(loss, "custom", [hidden, weight, bias, targets], { name: "linear_cross_entropy", backward });
  if (!loss.node) {
    // only the backward reads them
    lseChunks.forEach((x) => x.dispose());
    targetChunks.forEach((t) => t !== targets && t.dispose());
  }
  return reduceLosses(loss, targets, V, ignoreIndex, reduction);
}

/** logits [n, V] = h [n, C] · Wᵀ (+ b). */
function headLogits(h: Tensor, weight: Tensor, bias: Tensor | null, n: number, V: number, C: number): Tensor {
  const logits = alloc(h.backend, [n, V]);
  gemm(h, weight, logits, { batch: 1, M: n, N: V, K: C, transA: false, transB: true, strideA: 0, strideB: 0, bias });
  return logits;
}

/** Rows [start, start + n) of x viewed as [N, width] (x itself when that is all of it). */
function rowsOf(x: Tensor, start: number, n: number, width: number): Tensor {
  if (start === 0 && n * width === x.size) return x;
  const out = alloc(x.backend, [n, width], x.dtype);
  copyKernel(x, out, [n, width], [width, 1], start * width);
  return out;
}

/** Adds src (`size` values) into dst at flat offset `offset` (zeros there: a write), and frees src. */
function putRows(src: Tensor, dst: Tensor, offset: number, size: number): void {
  copyKernel(src, dst, [size], [1], offset, true);
  src.dispose();
}

/** dst += src (same shape), in place; frees src. */
function addInto(src: Tensor, dst: Tensor): void {
  putRows(src, dst, 0, src.size);
}
