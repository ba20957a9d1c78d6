// The kernel "matmul" on a native BLAS: a host function with exactly the ABI of the wasm export
// matmul_f32 (wasm/assembly/matmul.ts), so ./matmul.ts splits it into the same row/column chunks
// and the worker pool (./threads.ts) runs them on any thread. Each chunk is one cblas_sgemm per
// batch element on addresses inside the shared wasm memory: no copies. A bias is written into the
// output rows first, by the wasm matmul_f32 with K = 0 (bulk memory copies, ~3× faster than a
// copyWithin per row from JS), and the product added with beta = 1.

import type { BlasLibrary } from "./blas.ts";
import type { KernelExport } from "./module.ts";
import { sgemmHalfB } from "./blas_half.ts";

/** The pool's name for the host function (it sits beside the wasm exports). */
export const BLAS_MATMUL = "blas_matmul";

/**
 * blas_matmul(a, b, bias, out, batch, M, N, K, transA, transB, strideA, strideB, hasBias, r0, r1,
 * n0, n1, scratch, dtypeB): matmul_f32's arguments (byte offsets into `memory`); a 16-bit B
 * (dtypeB 1 f16, 2 bf16) goes through ./blas_half.ts. `wasmMatmul` is this
 * thread's matmul_f32 export (it writes the bias rows, into which it needs the scratch), `widenRows`
 * its half_widen_rows (a 16-bit B's blocks).
 */
export function blasMatmul(blas: BlasLibrary, memory: WebAssembly.Memory, wasmMatmul: KernelExport, widenRows: KernelExport): KernelExport {
  let buffer: ArrayBufferLike | undefined;
  let base = 0;
  return (a, b, bias, out, batch, M, N, K, transA, transB, strideA, strideB, hasBias, r0, r1, n0, n1, scratch, dtypeB) => {
    if (M <= 0 || n1 <= n0 || r1 <= r0) return;
    if (memory.buffer !== buffer) {
      // a shared memory reserves its maximum up front, so the base stays put on grow; re-read anyway
      buffer = memory.buffer;
      base = blas.address(buffer);
    }
    const cols = n1 - n0;
    const withBias = hasBias !== 0 && bias !== 0 ? 1 : 0;
    if (withBias || K <= 0) {
      wasmMatmul(a, b, bias, out, batch, M, N, 0, transA, transB, strideA, strideB, withBias, r0, r1, n0, n1, scratch, 0);
      if (K <= 0) return;
    }
    for (let bi = Math.floor(r0 / M); bi < batch && bi * M < r1; bi++) {
      const m0 = Math.max(r0 - bi * M, 0), m1 = Math.min(r1 - bi * M, M), rows = m1 - m0;
      const A = a + bi * strideA * 4, B = b + bi * strideB * (dtypeB ? 2 : 4);
      const C = out + (bi * M * N + m0 * N + n0) * 4;
      if (dtypeB) {
        sgemmHalfB(blas, widenRows, base, { A, B, C, rows, m0, n0, n1, M, N, K, transA, transB, accumulate: withBias === 1, bf16: dtypeB === 2, scratch });
        continue;
      }
      blas.sgemm(
        transA, transB, rows, cols, K, 1,
        base + A + (transA ? m0 : m0 * K) * 4, transA ? M : K,
        base + B + (transB ? n0 * K : n0) * 4, transB ? K : N,
        withBias ? 1 : 0, base + C, N,
      );
    }
  };
}
