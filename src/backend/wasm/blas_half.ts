// The native-BLAS matmul with a 16-bit B (f16/bf16 storage of frozen weights): BLAS libraries as
// shipped (Debian's OpenBLAS 0.3.21, BLIS) have no sgemm over 16-bit operands, so B is widened
// exactly to f32 in blocks of KB × NB into the thread's scratch (by the wasm half_widen_rows) and
// each block is one sgemm adding into C (beta = 1 after the first). The whole f32 B never exists: the memory a 16-bit base saves
// stays saved, at the cost of one pass over B per call (small next to the product).

import type { BlasLibrary } from "./blas.ts";
import type { KernelExport } from "./module.ts";

/** k-rows × columns of one widened block: 512 KiB of f32, inside the 1 MiB per-thread scratch. */
const KB = 256;
const NB = 512;

export interface HalfGemm {
  /** byte offsets into the wasm memory: this batch element's A (f32), B (16-bit) and C rows m0.. at column n0 */
  A: number; B: number; C: number;
  rows: number; m0: number; n0: number; n1: number;
  M: number; N: number; K: number; transA: number; transB: number;
  /** C already holds the bias: add onto it */
  accumulate: boolean;
  bf16: boolean;
  /** this thread's scratch block (byte offset) */
  scratch: number;
}

/** C[m0.., n0:n1] (+)= A·B for a 16-bit B, block by block through sgemm; `widenRows` is the wasm half_widen_rows. */
export function sgemmHalfB(blas: BlasLibrary, widenRows: KernelExport, base: number, g: HalfGemm): void {
  for (let nb = g.n0; nb < g.n1; nb += NB) {
    const nc = Math.min(NB, g.n1 - nb);
    for (let kb = 0; kb < g.K; kb += KB) {
      const kc = Math.min(KB, g.K - kb);
      // the block of B as f32: [nc][kc] when B is [N, K] (transB), else [kc][nc]
      const [outer, inner] = g.transB ? [nc, kc] : [kc, nc];
      const src = g.B + 2 * (g.transB ? nb * g.K + kb : kb * g.N + nb);
      widenRows(src, g.scratch, outer, inner, g.transB ? g.K : g.N, g.bf16 ? 1 : 0);
      blas.sgemm(
        g.transA, g.transB, g.rows, nc, kc, 1,
        base + g.A + (g.transA ? kb * g.M + g.m0 : g.m0 * g.K + kb) * 4, g.transA ? g.M : g.K,
        base + g.scratch, inner,
        kb > 0 || g.accumulate ? 1 : 0, base + g.C + (nb - g.n0) * 4, g.N,
      );
    }
  }
}
