// Packing a 16-bit B (f16 or bf16 storage: the frozen weights of a LoRA base) for matmul_f32's
// blocked GEMM: the same packed layout as packB/packBT in matmul.ts (strips of NR columns, k-major
// [strip][k][NR]; a last strip of width ≤ 4 is [k][4]; columns past the matrix are zeros), with
// each element widened exactly to f32 as it is packed, so the micro-kernels run unchanged in f32.
import { loadHalf, widenHalf } from "./half";
import { NR } from "./tile";

/** B stored [K, N] in 16 bits: pack B[pc:pc+kc, jc:jc+nc] as f32. */
export function packBHalf(B: usize, N: i32, pc: i32, kc: i32, jc: i32, nc: i32, Bp: usize, bf16: bool): void {
  let dst = Bp;
  for (let j0 = jc; j0 < jc + nc; j0 += NR) {
    const w = min(NR, jc + nc - j0);
    const width = w > 4 ? NR : 4;
    for (let k = 0; k < kc; k++) {
      const row = B + ((<usize>(pc + k) * <usize>N + <usize>j0) << 1);
      for (let j = 0; j < width; j++) store<f32>(dst + (<usize>j << 2), j < w ? loadHalf(row, <usize>j, bf16) : 0);
      dst += <usize>width << 2;
    }
  }
}

/** B stored [N, K] in 16 bits (read transposed): pack Bᵀ[pc:pc+kc, jc:jc+nc] as f32. */
export function packBTHalf(B: usize, K: i32, pc: i32, kc: i32, jc: i32, nc: i32, Bp: usize, bf16: bool): void {
  let dst = Bp;
  for (let j0 = jc; j0 < jc + nc; j0 += NR) {
    const w = min(NR, jc + nc - j0);
    const width = w > 4 ? NR : 4;
    // column j of the strip is row j0 + j of B: its elements pc.. are contiguous
    for (let j = 0; j < width; j++) {
      const col = dst + (<usize>j << 2);
      if (j >= w) {
        for (let k = 0; k < kc; k++) store<f32>(col + <usize>k * (<usize>width << 2), 0);
        continue;
      }
      const src = B + ((<usize>(j0 + j) * <usize>K + <usize>pc) << 1);
      for (let k = 0; k < kc; k++) store<f32>(col + <usize>k * (<usize>width << 2), loadHalf(src, <usize>k, bf16));
    }
    dst += <usize>kc * (<usize>width << 2);
  }
}

/**
 * Widens `outer` rows of `inner` 16-bit elements (rows `ld` elements apart at src) into a
 * contiguous f32 block at dst: the native-BLAS path (src/backend/wasm/blas_half.ts) stages a block
 * of a 16-bit B this way before each sgemm (a JS loop over the shared memory is ~20× slower).
 */
export function half_widen_rows(src: usize, dst: usize, outer: i32, inner: i32, ld: i32, bf16: i32): void {
  for (let o = 0; o < outer; o++) {
    widenHalf(src + ((<usize>o * <usize>ld) << 1), dst + ((<usize>o * <usize>inner) << 2), inner, bf16 != 0);
  }
}
