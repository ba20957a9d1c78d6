// WASM host side of the kernel "matmul": splits one call into chunks of the export matmul_f32
// (rows [r0, r1) × columns [n0, n1) each) and runs them on the main thread and the worker pool
// (./threads.ts). With a native BLAS the chunks go to the host function blas_matmul instead
// (./blas_matmul.ts, same ABI). Not a shape checker: src/ops has checked. Kernel semantics:
// src/backend/kernels.ts "matmul"; the kernel and its ABI: wasm/assembly/matmul.ts.

import type { KernelParams } from "../kernels.ts";
import type { WasmRuntime } from "./module.ts";
import { BLAS_MATMUL } from "./blas_matmul.ts";
import { threadPool } from "./threads.ts";
import { unitRanges } from "./parallel.ts";

/**
 * Calls below this many flops (~0.2 ms on one thread) run on the main thread alone: waking a worker
 * and waking the main thread again cost 10–70 µs each on a busy 2-core box, more than a split saves.
 */
export const PARALLEL_MIN_FLOPS = 8e6;
/**
 * How matmul calls are split (mutable so that tests/bench/matmul_ab.ts and ab.ts can compare
 * settings in one process; the README's native-BLAS figures have the comparison).
 * - blasMinFlops: PARALLEL_MIN_FLOPS for a native BLAS: ~40 µs on one thread. The pool's workers
 *   poll for the next job during a training step, so even the lm-head product (768×128·128×65,
 *   1.3e7 flops) gains from both threads.
 * - chunksPerThread (wasm kernel): > 1 lets the main thread take over the share of a worker that
 *   wakes late.
 * - blasChunksPerThread: 1: every extra row chunk packs all of B again in the BLAS.
 */
export const matmulSplit = { blasMinFlops: 4e6, chunksPerThread: 2, blasChunksPerThread: 1 };

const MR = 6; // register tile of the kernel: row chunks start at multiples of MR,
const NR = 8; // column chunks at multiples of NR

/** Argument slot of matmul_f32's scratch pointer. */
export const MATMUL_SCRATCH_ARG = 17;

/**
 * matmul_f32's arguments for rows [r0, r1) × columns [n0, n1) of kernel "matmul" (a, b, bias (0 =
 * none) and out are byte offsets), and the call's size. A batch with one B and contiguous A is one
 * matmul with batch·M rows.
 */
export function matmulCall(a: number, b: number, bias: number, out: number, p: KernelParams<"matmul">) {
  let { batch, M } = p;
  const { N, K, transA, transB, strideA, strideB } = p;
  const hasBias = p.hasBias && bias !== 0 ? 1 : 0;
  if (batch > 1 && strideB === 0 && !transA && strideA === M * K) {
    M *= batch;
    batch = 1;
  }
  const rows = batch * M;
  return {
    rows, M, N, flops: 2 * rows * N * K,
    args: (r0 = 0, r1 = rows, n0 = 0, n1 = N, scratch = 0): number[] =>
      [a, b, bias, out, batch, M, N, K, transA, transB, strideA, strideB, hasBias, r0, r1, n0, n1, scratch, p.dtypeB ?? 0],
  };
}

/**
 * Products with at most this many rows per matrix (decoding) stay on the wasm kernel, whose
 * vector·matrix path reads B in place; a BLAS sgemm packs all of B for them (OpenBLAS 0.3.21:
 * decoding was 1.4–4.5× slower on it).
 */
export const BLAS_MIN_ROWS = 4;

/** The pool function that runs the chunks of product `m` on `rt`, and the size from which it is split. */
export function matmulEngine(rt: WasmRuntime, m: { M: number }): { fn: string; minParallelFlops: number; chunksPerThread: number } {
  return rt.blas && m.M >= BLAS_MIN_ROWS
    ? { fn: BLAS_MATMUL, minParallelFlops: matmulSplit.blasMinFlops, chunksPerThread: matmulSplit.blasChunksPerThread }
    : { fn: "matmul_f32", minParallelFlops: PARALLEL_MIN_FLOPS, chunksPerThread: matmulSplit.chunksPerThread };
}

/** out = A·B (+ bias) for kernel "matmul"; a, b, bias (0 = none) and out are byte offsets. */
export function runMatmul(rt: WasmRuntime, a: number, b: number, bias: number, out: number, p: KernelParams<"matmul">): void {
  const m = matmulCall(a, b, bias, out, p);
  const pool = threadPool(rt);
  const { fn, minParallelFlops, chunksPerThread } = matmulEngine(rt, m);
  if (rt.threads <= 1 || m.flops < minParallelFlops) {
    pool.run(fn, [m.args()], MATMUL_SCRATCH_ARG);
    return;
  }
  pool.startWorkers();
  pool.run(fn, matmulChunks(m, pool.participants, chunksPerThread), MATMUL_SCRATCH_ARG);
}

/**
 * The call split for `threads` threads, about `perThread` chunks each (1 chunk: the whole call). The
 * longer side is split: row chunks each repack all of B, column chunks each read all of A.
 */
export function matmulChunks(m: ReturnType<typeof matmulCall>, threads: number, perThread: number): number[][] {
  if (threads * perThread <= 1) return [m.args()];
  if (m.rows >= m.N) return unitRanges(m.rows, MR, threads, perThread).map(([r0, r1]) => m.args(r0, r1, 0, m.N));
  return unitRanges(m.N, NR, threads, perThread).map(([n0, n1]) => m.args(0, m.rows, n0, n1));
}
