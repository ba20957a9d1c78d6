// Row-parallel launches for the big non-matmul kernels (cross_entropy and its backward over rows,
// attention and its backward over the batch): one call becomes chunks over disjoint row ranges, run
// on the worker pool of ./threads.ts. No ABI change: a chunk is the same export called with pointers
// advanced to its first row. Small calls stay on the main thread (a wake-up costs ~10–100 µs).
// Not a scheduler: everything here is synchronous, like the kernels.

import type { KernelParams } from "../kernels.ts";
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

/** attention_f32 / attention_backward_f32 over batch ranges, each thread with its own scratch. */
export function runAttention(
  rt: WasmRuntime, kernel: "attention" | "attention_backward", ptrs: readonly number[],
  p: KernelParams<"attention">,
): boolean {
  const { B, T, S, H, Hkv, D, scale, causal } = p;
  if (!worthSplitting(rt, B, B * H * T * S * D * 4) || S * 8 > SCRATCH_BYTES) return false;
  const pool = threadPool(rt);
  pool.startWorkers();
  const q = T * H * D, kv = S * Hkv * D, l = H * T; // floats per batch element
  // forward: q k v out lse; backward: dout q k v out lse dq dk dv
  const perBatch = kernel === "attention" ? [q, kv, kv, q, l] : [q, q, kv, kv, q, l, q, kv, kv];
  const chunks = rowRanges(B).map(([b0, b1]) => [
    ...ptrs.map((ptr, i) => ptr + b0 * perBatch[i] * 4), b1 - b0, T, S, H, Hkv, D, scale, causal, 0,
  ]);
  pool.run(`${kernel}_f32`, chunks, ptrs.length + 8); // the trailing scratch argument
  return true;
}
