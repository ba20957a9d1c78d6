// The LM head and cross-entropy in one op, chunk by chunk of positions, so that training never
// holds the full [N, V] logits (Qwen2.5's 151,936-token vocabulary at 2048 positions is 1.2 GB of
// logits per sequence, and as much again for their gradient). Per chunk: logits = h·Wᵀ + b, the
// cross_entropy kernel, and — while the chunk's logits are at hand — cross_entropy_backward for a
// unit output gradient, turned into dHidden = dlogits·W and, when the head is trainable (full
// fine-tuning, a tied embedding), dW += dlogitsᵀ·h. Backward then only scales those by the output
// gradient. Per-row losses through a trainable head (their row weights are known only in
// backward) keep each chunk's lse instead and recompute its logits in backward. Peak extra memory:
// one chunk's logits and dlogits. Only kernels of the kernel list run here, so it works on every
// backend. Same values as crossEntropy(linear(h, W, b), targets) up to f32 summation order.

import type { Tensor } from "../tensor/tensor.ts";
import { noGrad, record, willRecord } from "../autograd/tape.ts";
import { isAutocast, withAutocast } from "../tensor/mode.ts";
import { alloc, allocZeros, backendOf, launch } from "./dispatch.ts";
import { checkFloat, mul } from "./elementwise.ts";
import { sum } from "./reduce.ts";
import { gemm } from "./matmul.ts";
import { copyKernel } from "./movement.ts";
import { checkIds, hostIds } from "./token_ids.ts";
import { fromArray } from "../tensor/tensor.ts";
import { isHalf } from "../tensor/dtype.ts";
import { meanOverTargets, type CrossEntropyOptions } from "./loss.ts";

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
  // a frozen 16-bit head (a bf16 base's tied embedding) is read as it is: the matmul kernel widens it
  if (!isHalf(weight.dtype)) checkFloat("linear_cross_entropy", weight);
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
  // targets known on the host (the usual case: labels are built there) let masked positions be
  // skipped: their loss and gradient are 0, so no logits are made for them at all
  const ids = hostIds(targets);
  const chunks = planChunks(N, rows, ids, ignoreIndex);

  const single = chunks.length === 1 && chunks[0]![1] === N;
  const reduced = reduction !== "none";
  const needs = [hidden, weight, bias].map((t) => !!t?.requiresGrad);
  // The gradient for a unit output gradient is made in the forward, from the logits already at
  // hand (as Liger-Kernel's fused linear cross-entropy), and backward only scales it: no logits
  // recomputed. That needs the output gradient to be one number for all rows wherever dW or db
  // sums over rows — a reduced loss, or per-row losses (DPO's log-probs) through a frozen head.
  // Otherwise backward recomputes each chunk's logits.
  const eager = willRecord([hidden, weight, bias]) && (reduced || !(needs[1] || needs[2]));
  // the chunks' targets, cut on the host where their values are (a copy kernel moves f32 words,
  // which need not keep i32 bits on a GPU)
  const targetChunks = chunks.map(([start, n]) => (single ? targets : ids ? fromArray(ids.slice(start, start + n), [n], { dtype: "i32", backend }) : rowsOf(targets, start, n, 1)));
  const lseChunks: Tensor[] = [];
  // several chunks scatter-add their rows into zeros
  const zerosIfChunked = (shape: readonly number[]) => (single ? alloc(backend, shape) : allocZeros(backend, shape));
  const loss = zerosIfChunked(targets.shape);
  const unit = eager ? { dh: needs[0] ? zerosIfChunked(hidden.shape) : null, dw: needs[1] ? alloc(backend, weight.shape) : null, db: needs[2] ? alloc(backend, [V]) : null } : null;
  chunks.forEach(([start, n], i) => {
    const h = rowsOf(hidden, start, n, C);
    const logits = headLogits(h, weight, bias, n, V, C);
    const lossC = single ? loss : alloc(backend, [n]), lseC = alloc(backend, [n]);
    launch("cross_entropy", [logits, targetChunks[i]], [lossC, lseC], { N: n, V, ignoreIndex });
    if (!single) putRows(lossC, loss, start, n);
    if (unit) {
      const ones = alloc(backend, [n]);
      launch("fill", [], [ones], { n, value: 1 });
      const dlogits = alloc(backend, [n, V]);
      launch("cross_entropy_backward", [logits, targetChunks[i], lseC, ones], [dlogits], { N: n, V, ignoreIndex });
      ones.dispose();
      logits.dispose();
      headGrads(dlogits, h, weight, unit, { start, n, first: i === 0, single, V, C });
      dlogits.dispose();
      lseC.dispose();
    } else {
      logits.dispose();
      lseChunks.push(lseC);
    }
    if (h !== hidden) h.dispose();
  });
  if (unit) targetChunks.forEach((t) => t !== targets && t.dispose());

  // g: the output's gradient, [...] per position or (reduced) one number
  const backward = (g: Tensor, [needH, needW, needB]: readonly boolean[]): (Tensor | null)[] => withAutocast(autocast, () => {
    if (unit) {
      const gRows = reduced ? g : g.reshape([...g.shape, 1]); // scales each row of dHidden
      const scaled = [needH && unit.dh ? mul(unit.dh, gRows) : null, needW && unit.dw ? mul(unit.dw, g) : null, needB && unit.db ? mul(unit.db, g) : null, null];
      for (const x of [unit.dh, unit.dw, unit.db]) x?.dispose(); // the graph runs backward once
      return scaled;
    }
    const grads = { dh: needH ? zerosIfChunked(hidden.shape) : null, dw: needW ? alloc(backend, weight.shape) : null, db: needB && bias ? alloc(backend, [V]) : null };
    chunks.forEach(([start, n], i) => {
      const h = rowsOf(hidden, start, n, C), gC = rowsOf(g, start, n, 1);
      const logits = headLogits(h, weight, bias, n, V, C);
      const dlogits = alloc(backend, [n, V]);
      launch("cross_entropy_backward", [logits, targetChunks[i], lseChunks[i], gC], [dlogits], { N: n, V, ignoreIndex });
      logits.dispose();
      headGrads(dlogits, h, weight, grads, { start, n, first: i === 0, single, V, C });
      dlogits.dispose();
      if (h !== hidden) h.dispose();
      if (gC !== g) gC.dispose();
    });
    return [grads.dh, grads.dw, grads.db, null];
  });

  if (!reduced) {
    record(loss, "custom", [hidden, weight, bias, targets], { name: "linear_cross_entropy", backward });
    if (!loss.node) release();
    return loss;
  }
  const total = noGrad(() => sum(loss));
  loss.dispose();
  record(total, "custom", [hidden, weight, bias, targets], { name: "linear_cross_entropy", backward });
  if (!total.node) release();
  return reduction === "sum" ? total : meanOverTargets(total, targets, V, ignoreIndex);

  /** Without a graph nothing reads what the backward would. */
  function release(): void {
    lseChunks.forEach((x) => x.dispose());
    targetChunks.forEach((t) => t !== targets && t.dispose());
    if (unit) for (const x of [unit.dh, unit.dw, unit.db]) x?.dispose();
  }
}

/**
 * [start, rows] chunks of at most `rows` positions. With host targets, only runs of counted
 * positions (target ≠ ignoreIndex): SFT masks prompts, so often half the rows need no logits. At
 * least one chunk, so the gradients that the first chunk writes (not accumulates) exist.
 */
export function planChunks(N: number, rows: number, ids: Int32Array | undefined, ignoreIndex: number): (readonly [number, number])[] {
  const even = () => Array.from({ length: Math.ceil(N / rows) }, (_, i) => [i * rows, Math.min(rows, N - i * rows)] as const);
  if (!ids) return even();
  const chunks: (readonly [number, number])[] = [];
  for (let i = 0; i < N; ) {
    if (ids[i] === ignoreIndex) { i++; continue; }
    let end = i;
    while (end < N && ids[end] !== ignoreIndex && end - i < rows) end++;
    chunks.push([i, end - i] as const);
    i = end;
  }
  return chunks.length ? chunks : [[0, Math.min(rows, N)] as const];
}

interface HeadGrads {
  dh: Tensor | null;
  dw: Tensor | null;
  db: Tensor | null;
}

/**
 * One chunk's share of the head's gradients from its dlogits [n, V]: dHidden rows = dlogits·W
 * (written into rows start.. of grads.dh), dW += dlogitsᵀ·h, db += Σ_rows dlogits (the first
 * chunk writes dW and db, later ones add theirs in).
 */
function headGrads(dlogits: Tensor, h: Tensor, weight: Tensor, grads: HeadGrads, { start, n, first, single, V, C }: { start: number; n: number; first: boolean; single: boolean; V: number; C: number }): void {
  const backend = dlogits.backend;
  const gemmParams = { batch: 1, strideA: 0, strideB: 0, bias: null, transB: false };
  if (grads.dh) {
    const dhC = single ? grads.dh : alloc(backend, [n, C]);
    gemm(dlogits, weight, dhC, { ...gemmParams, M: n, N: C, K: V, transA: false });
    if (!single) putRows(dhC, grads.dh, start * C, n * C);
  }
  if (grads.dw) {
    const dwC = first ? grads.dw : alloc(backend, [V, C]);
    gemm(dlogits, h, dwC, { ...gemmParams, M: V, N: C, K: n, transA: true });
    if (!first) addInto(dwC, grads.dw);
  }
  if (grads.db) {
    const dbC = first ? grads.db : alloc(backend, [V]);
    launch("sum", [dlogits], [dbC], { outer: 1, len: n, inner: V });
    if (!first) addInto(dbC, grads.db);
  }
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
