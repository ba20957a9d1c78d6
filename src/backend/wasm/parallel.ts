// Row-parallel launches for the big non-matmul kernels (cross_entropy and its backward over rows,
// attention and its backward over the batch): one call becomes chunks over disjoint row ranges, run
// on the worker pool of ./threads.ts. No ABI change: a chunk is the same export called with pointers
// advanced to its first row. Small calls stay on the main thread (a wake-up costs ~10–100 µs).
// Not a scheduler: everything here is synchronous, like the kernels.

import { type KernelName, type KernelParams, paramList } from "../kernels.ts";
import type { WasmRuntime } from "./module.ts";
import { MAX_CHUNKS, SCRATCH_BYTES, threadPool } from "./threads.ts";

/** Calls smaller than this (elements touched, or flops for attention) stay on the main thread. */
export const PARALLEL_MIN_WORK = 1 << 20;

/**
 * [start, end) ranges covering 0..n: as many as the pool takes (MAX_CHUNKS), so that a thread the
 * OS deschedules holds up at most one small chunk while the others take the rest.
 */
export function rowRanges(n: number): [number, number][] {
  const count = Math.max(1, Math.min(n, MAX_CHUNKS));
  const out: [number, number][] = [];
  for (let i = 0; i < count; i++) {
    const s = Math.round((n * i) / count), e = Math.round((n * (i + 1)) / count);
    if (e > s) out.push([s, e]);
  }
  return out;
}

/** true when the call should be split: threads are allowed, it is big enough, and rows can be split. */
function worthSplitting(rt: WasmRuntime, rows: number, work: number): boolean {
  return rt.threads > 1 && rows > 1 && work >= PARALLEL_MIN_WORK;
}

/** cross_entropy_f32 / cross_entropy_backward_f32 over row ranges. Returns false if not split. */
export function runCrossEntropy(
  rt: WasmRuntime, kernel: "cross_entropy" | "cross_entropy_backward", ptrs: readonly number[],
  p: KernelParams<"cross_entropy">,
): boolean {
  const { N, V, ignoreIndex } = p;
  if (!worthSplitting(rt, N, N * V)) return false;
  const pool = threadPool(rt);
  pool.startWorkers();
  // pointer i advances by rowFloats[i] floats per row: logits V, targets 1, and per kernel:
  const rowFloats = kernel === "cross_entropy" ? [V, 1, 1, 1] : [V, 1, 1, 1, V];
  const chunks = rowRanges(N).map(([r0, r1]) => [
    ...ptrs.map((ptr, i) => ptr + r0 * rowFloats[i] * 4), r1 - r0, V, ignoreIndex,
  ]);
  pool.run(`${kernel}_f32`, chunks);
  return true;
}

/** Query rows per block of attention_backward_f32's row path (BACKWARD_ROWS in wasm/assembly/attention.ts). */
export const ATTENTION_BACKWARD_ROWS = 32;
/** Rows of the matmul register tile (MR in wasm/assembly/tile.ts): the tiled attention needs T ≥ MR. */
const TILE_ROWS = 6;

const roundUp = (n: number, m: number) => Math.ceil(n / m) * m;

/**
 * Bytes of scratch the tiled attention path needs (tiledScratchBytes in wasm/assembly/attention_tiles.ts,
 * which the kernel checks against the size it is given): packed keys and values of one head, and
 * the probabilities of a query panel (forward) or of the whole head with their gradients (backward).
 */
export function tiledAttentionScratchBytes(kernel: "attention" | "attention_backward", T: number, S: number, D: number): number {
  const S8 = roundUp(S, 8), D8 = roundUp(D, 8), ldp = S8 + 8, MR = TILE_ROWS;
  const floats = kernel === "attention"
    ? 64 + MR * D + S8 * D + D8 * S + MR * ldp
    : 64 + 2 * MR * D + 2 * S8 * D + D8 * S + 2 * D8 * T + 2 * roundUp(T, MR) * ldp;
  return floats * 4 + 64;
}

/**
 * Bytes of scratch an attention_f32 / attention_backward_f32 call gets: the tiled path's when T ≥ 6
 * and it fits a worker's scratch (SCRATCH_BYTES), else the row path's (2·S floats forward,
 * 2·min(T, 32)·S backward).
 */
export function attentionScratchBytes(kernel: "attention" | "attention_backward", T: number, S: number, D: number): number {
  const tiled = tiledAttentionScratchBytes(kernel, T, S, D);
  if (T >= TILE_ROWS && tiled <= SCRATCH_BYTES) return tiled;
  return kernel === "attention" ? 2 * S * 4 : 2 * Math.min(T, ATTENTION_BACKWARD_ROWS) * S * 4;
}

/** attention_f32 / attention_backward_f32 over batch ranges, each thread with its own scratch. */
export function runAttention(
  rt: WasmRuntime, kernel: "attention" | "attention_backward", ptrs: readonly number[],
  p: KernelParams<"attention">,
): boolean {
  const { B, T, S, H, Hkv, D } = p;
  if (!worthSplitting(rt, B, B * H * T * S * D * 4) || attentionScratchBytes(kernel, T, S, D) > SCRATCH_BYTES) return false;
  const pool = threadPool(rt);
  pool.startWorkers();
  // floats per batch element: q and dq (strided rows), k v dk dv (strided), out and dout, lse
  const q = T * (p.qRow || H * D), kv = S * (p.kvRow || Hkv * D), o = T * H * D, l = H * T;
  // forward: q k v out lse; backward: dout q k v out lse dq dk dv (offsets are applied in the kernel)
  const perBatch = kernel === "attention" ? [q, kv, kv, o, l] : [o, q, kv, kv, o, l, q, kv, kv];
  const rest = paramList("attention", p).slice(1);
  const chunks = rowRanges(B).map(([b0, b1]) => [
    ...ptrs.map((ptr, i) => ptr + b0 * perBatch[i] * 4), b1 - b0, ...rest, 0, SCRATCH_BYTES,
  ]);
  pool.run(`${kernel}_f32`, chunks, ptrs.length + rest.length + 1); // the trailing scratch argument (then its size)
  return true;
}

// ---- elementwise maps, fill, row kernels, copy ----

/**
 * Rough single-thread cost of one element, in ns (kernel lab, tests/bench/kernels.bench.ts, 768×512
 * on a 2-core Xeon), for the kernels split by runSplit below. A call is split when elements × cost
 * reaches SPLIT_MIN_NS. Measured in the baby-GPT step (KILN_DEBUG=1): gelu and its backward
 * (~1 ms) run 1.6× faster split, but calls of ~50–100 µs on data another core just wrote (add,
 * copy, layer_norm at 768×128) ran 1.4× SLOWER split (wake-up, and the data moving between the
 * cores' caches), so only calls of a few hundred µs and more are split.
 */
const COST_NS: Partial<Record<KernelName, number>> = {
  fill: 0.2, add: 0.4, sub: 0.4, mul: 0.4, div: 0.5,
  affine: 0.35, exp: 1.3, sqrt: 0.5, sigmoid: 1.6, relu: 0.35, gelu: 1.8, silu: 1.6,
  relu_backward: 0.45, gelu_with_grad: 2.2, silu_backward: 2.0,
  layer_norm: 0.6, softmax: 1.9, softmax_backward: 0.8, sum: 0.3, copy: 0.8, copy_backward: 0.8,
};
/** Estimated single-thread ns below which a call stays on the main thread. */
export const SPLIT_MIN_NS = 200_000;
/** Chunks per participant: > 1 lets the main thread take over the share of a worker that wakes late. */
const SPLIT_CHUNKS_PER_THREAD = 4;
/** Chunk boundaries fall on multiples of this many floats (one 64-byte cache line: no false sharing). */
const LINE = 16;

/** The kernels runSplit handles. */
export function splittable(kernel: KernelName): boolean {
  return COST_NS[kernel] !== undefined;
}

/** [start, end) ranges over 0..n, starts at multiples of `unit`, about `perThread` per thread (matmul uses it too). */
export function unitRanges(n: number, unit: number, threads: number, perThread = SPLIT_CHUNKS_PER_THREAD): [number, number][] {
  const units = Math.ceil(n / unit);
  const count = Math.max(1, Math.min(units, threads * perThread, MAX_CHUNKS));
  const out: [number, number][] = [];
  for (let i = 0; i < count; i++) {
    const s = Math.min(n, Math.round((units * i) / count) * unit);
    const e = i === count - 1 ? n : Math.min(n, Math.round((units * (i + 1)) / count) * unit);
    if (e > s) out.push([s, e]);
  }
  return out;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}
const lcm = (a: number, b: number) => (a / gcd(a, b)) * b;

/**
 * Splits a call of an elementwise map, fill, binary op (modulo broadcasting), a row kernel
 * (layer_norm, softmax and its backward, sum over a last axis) or copy/copy_backward over the worker
 * pool: chunks are the same export with pointers advanced, so results are bit-identical to one call.
 * `ptrs` are inputs then outputs (kernel-list order). Returns false if the call was not split.
 */
export function runSplit<K extends KernelName>(rt: WasmRuntime, kernel: K, ptrs: readonly number[], params: KernelParams<K>): boolean {
  const cost = COST_NS[kernel];
  if (cost === undefined || rt.threads <= 1) return false;
  const plan = planSplit(kernel, ptrs, params as unknown as Record<string, number>);
  if (!plan || plan.n * plan.elementsPerItem * cost < SPLIT_MIN_NS) return false;
  const pool = threadPool(rt);
  pool.startWorkers();
  const ranges = unitRanges(plan.n, plan.unit, Math.max(2, pool.participants));
  if (ranges.length < 2) return false;
  pool.run(`${kernel}_f32`, ranges.map(([s, e]) => plan.chunk(s, e)));
  return true;
}

interface SplitPlan {
  /** items (elements, rows, or slabs of a copy) to split */
  n: number;
  /** chunk starts at multiples of this many items */
  unit: number;
  /** elements per item (for the cost estimate) */
  elementsPerItem: number;
  /** the export's argument list for items [s, e) */
  chunk(s: number, e: number): number[];
}

function planSplit(kernel: KernelName, ptrs: readonly number[], p: Record<string, number>): SplitPlan | null {
  const at = (ptr: number, floats: number) => ptr + floats * 4;
  switch (kernel) {
    case "fill":
      return { n: p.n, unit: LINE, elementsPerItem: 1, chunk: (s, e) => [at(ptrs[0], s), e - s, p.value] };
    case "add": case "sub": case "mul": case "div": {
      const { n, na, nb } = p;
      // each operand is full (advances with the chunk), a scalar (na = 1) or a block repeated n / nb
      // times (chunks start at multiples of the block, the block pointer stays)
      const block = (m: number) => (m === n || m === 1 ? 1 : m);
      if ((na !== n && n % na !== 0) || (nb !== n && n % nb !== 0)) return null;
      const ba = block(na), bb = block(nb);
      const unit = lcm(lcm(ba, bb), LINE);
      if (unit >= n) return null;
      const [a, b, out] = ptrs;
      return {
        n, unit, elementsPerItem: 1,
        chunk: (s, e) => [
          na === n ? at(a, s) : a, nb === n ? at(b, s) : b, at(out, s), e - s,
          na === n ? e - s : na, nb === n ? e - s : nb,
        ],
      };
    }
    case "affine": case "exp": case "sqrt": case "sigmoid": case "relu": case "gelu": case "silu":
      return {
        n: p.n, unit: LINE, elementsPerItem: 1,
        chunk: (s, e) => [at(ptrs[0], s), at(ptrs[1], s), e - s, ...(kernel === "affine" ? [p.alpha, p.beta] : [])],
      };
    case "relu_backward": case "silu_backward": case "gelu_with_grad": // 2 in 1 out, or 1 in 2 out
      return { n: p.n, unit: LINE, elementsPerItem: 1, chunk: (s, e) => [at(ptrs[0], s), at(ptrs[1], s), at(ptrs[2], s), e - s] };
    case "layer_norm": {
      const { rows, C, eps } = p; // x weight bias out mean rstd
      const [x, w, b, out, mean, rstd] = ptrs;
      return {
        n: rows, unit: 16, elementsPerItem: C,
        chunk: (s, e) => [at(x, s * C), w, b, at(out, s * C), at(mean, s), at(rstd, s), e - s, C, eps],
      };
    }
    case "softmax": case "softmax_backward": {
      const { rows, cols } = p;
      return { n: rows, unit: 1, elementsPerItem: cols, chunk: (s, e) => [...ptrs.map((ptr) => at(ptr, s * cols)), e - s, cols] };
    }
    case "sum": {
      // rows of a last-axis sum (inner = 1), or the outer blocks of a sum over a middle axis
      const { outer, len, inner } = p;
      if (outer < 2) return null;
      const [x, out] = ptrs;
      return { n: outer, unit: inner === 1 ? LINE : 1, elementsPerItem: len * inner, chunk: (s, e) => [at(x, s * len * inner), at(out, s * inner), e - s, len, inner] };
    }
    case "copy": case "copy_backward":
      return planCopy(kernel, ptrs, p);
    default:
      return null;
  }
}

const COPY_DIMS = 6;

/**
 * copy / copy_backward split over the outermost non-unit dim of the view (not the innermost plane).
 * copy_backward scatter-adds into dx, so there each index of that dim must own a disjoint range of
 * dx: its stride exceeds the span of all inner dims.
 */
function planCopy(kernel: "copy" | "copy_backward", ptrs: readonly number[], p: Record<string, number>): SplitPlan | null {
  const d = [p.d0, p.d1, p.d2, p.d3, p.d4, p.d5], s = [p.s0, p.s1, p.s2, p.s3, p.s4, p.s5];
  const real = d.map((v, i) => (v > 1 ? i : -1)).filter((i) => i >= 0);
  if (real.length === 0) return null;
  const k = real[0];
  const inner = d.slice(k + 1).reduce((a, v) => a * v, 1); // dense floats per index of dim k
  if (kernel === "copy_backward") {
    let span = 0;
    for (let j = k + 1; j < COPY_DIMS; j++) span += (d[j] - 1) * Math.abs(s[j]);
    if (Math.abs(s[k]) <= span) return null;
  }
  const [src, dst] = ptrs; // copy: x (strided) → out (dense); copy_backward: dout (dense) → dx (strided)
  return {
    n: d[k], unit: 1, elementsPerItem: inner,
    chunk: (a, b) => {
      const dims = d.slice();
      dims[k] = b - a;
      const offset = p.offset + a * s[k];
      const dense = a * inner * 4;
      const ptr0 = kernel === "copy" ? src : src + dense, ptr1 = kernel === "copy" ? dst + dense : dst;
      return [ptr0, ptr1, (b - a) * inner, p.rank, offset, ...dims, ...s];
    },
  };
}
