// The native-BLAS matmul with a 16-bit B (f16/bf16 storage of frozen weights): BLAS libraries as
// shipped (Debian's OpenBLAS 0.3.21, BLIS) have no sgemm over 16-bit operands, so B is widened
// exactly to f32 in blocks of KB × NB into the thread's scratch and each block is one sgemm adding
// into C (beta = 1 after the first). The whole f32 B never exists: the memory a 16-bit base saves
// stays saved, at the cost of one pass over B per call (small next to the product).

import type { BlasLibrary } from "./blas.ts";

/** k-rows × columns of one widened block: 512 KiB of f32, inside the 1 MiB per-thread scratch. */
const KB = 256;
const NB = 512;

let f16Table: Uint32Array | null = null;
/** f16 bits -> f32 bits for all 65536 patterns (256 KiB, built on first use). */
function f16Bits(): Uint32Array {
  if (f16Table) return f16Table;
  const t = new Uint32Array(65536);
  const f = new Float32Array(t.buffer);
  for (let h = 0; h < 65536; h++) {
    const e = (h >> 10) & 0x1f, m = h & 0x3ff, sign = h & 0x8000 ? -1 : 1;
    if (e === 0x1f) t[h] = ((h & 0x8000) << 16) | 0x7f800000 | (m << 13); // inf / NaN with its payload
    else f[h] = sign * (e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15));
  }
  return (f16Table = t);
}

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

/** C[m0.., n0:n1] (+)= A·B for a 16-bit B, block by block through sgemm. */
export function sgemmHalfB(blas: BlasLibrary, memory: WebAssembly.Memory, base: number, g: HalfGemm): void {
  const u16 = new Uint16Array(memory.buffer);
  const u32 = new Uint32Array(memory.buffer);
  const table = g.bf16 ? null : f16Bits();
  const b0 = g.B >> 1, s0 = g.scratch >> 2;
  for (let nb = g.n0; nb < g.n1; nb += NB) {
    const nc = Math.min(NB, g.n1 - nb);
    for (let kb = 0; kb < g.K; kb += KB) {
      const kc = Math.min(KB, g.K - kb);
      // the block of B as f32: [nc][kc] when B is [N, K] (transB), else [kc][nc]
      const [outer, inner] = g.transB ? [nc, kc] : [kc, nc];
      for (let o = 0; o < outer; o++) {
        const src = b0 + (g.transB ? (nb + o) * g.K + kb : (kb + o) * g.N + nb);
        const dst = s0 + o * inner;
        if (table) for (let i = 0; i < inner; i++) u32[dst + i] = table[u16[src + i]];
        else for (let i = 0; i < inner; i++) u32[dst + i] = u16[src + i] << 16;
      }
      blas.sgemm(
        g.transA, g.transB, g.rows, nc, kc, 1,
        base + g.A + (g.transA ? kb * g.M + g.m0 : g.m0 * g.K + kb) * 4, g.transA ? g.M : g.K,
        base + g.scratch, inner,
        kb > 0 || g.accumulate ? 1 : 0, base + g.C + (nb - g.n0) * 4, g.N,
      );
    }
  }
}
