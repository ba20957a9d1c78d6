// matmul_f32: out[b, m, n] = Σ_k A[b, m, k]·B[b, k, n] (+ bias[n]), the kernel "matmul" of
// src/backend/kernels.ts. Simple scalar version (placeholder until the blocked SIMD kernel lands).
// ABI: (a, b, bias, out, batch, M, N, K, transA, transB, strideA, strideB, hasBias, r0, r1, n0, n1, scratch):
// pointers are byte offsets; a call computes rows [r0, r1) of the flattened [batch·M] rows and
// columns [n0, n1); scratch is per-thread packing space (unused here).

export function matmul_f32(
  a: usize, b: usize, bias: usize, out: usize,
  batch: i32, M: i32, N: i32, K: i32, transA: i32, transB: i32, strideA: i32, strideB: i32, hasBias: i32,
  r0: i32, r1: i32, n0: i32, n1: i32, scratch: usize,
): void {
  for (let r = r0; r < r1; r++) {
    const bi = r / M, m = r % M;
    const pa = a + ((<usize>bi * <usize>strideA) << 2);
    const pb = b + ((<usize>bi * <usize>strideB) << 2);
    // element strides (in floats) of A along k and B along k
    const aRow: usize = transA ? <usize>m : <usize>m * <usize>K;
    const aK: usize = transA ? <usize>M : 1;
    const bK: usize = transB ? 1 : <usize>N;
    for (let n = n0; n < n1; n++) {
      const bCol: usize = transB ? <usize>n * <usize>K : <usize>n;
      let acc: f32 = hasBias ? load<f32>(bias + (<usize>n << 2)) : 0;
      for (let k = 0; k < K; k++) {
        acc += load<f32>(pa + ((aRow + <usize>k * aK) << 2)) * load<f32>(pb + ((bCol + <usize>k * bK) << 2));
      }
      store<f32>(out + ((<usize>r * <usize>N + <usize>n) << 2), acc);
    }
  }
}
