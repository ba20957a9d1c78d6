// kernels/matmul_common.wgsl: what every matmul family shares, prepended by shaders.ts to
// matmul.wgsl and matmul_f16.wgsl. Bindings: a@0, b@1, bias@2 (a dummy when hasBias = 0), out@3,
// Params@4. A[b] starts at b·strideA and is [M, K] ([K, M] when TRANS_A); B[b] at b·strideB, [K, N]
// ([N, K] when TRANS_B). TRANS_A/TRANS_B are override constants (one pipeline per combination, no
// branch in the inner loop) and equal the transA/transB params.

override TRANS_A: u32 = 0u;
override TRANS_B: u32 = 0u;

struct Params { batch: u32, M: u32, N: u32, K: u32, transA: u32, transB: u32, strideA: u32, strideB: u32, hasBias: u32 }

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

fn load_a(base: u32, m: u32, k: u32) -> f32 {
  if (TRANS_A == 1u) { return a[base + k * p.M + m]; }
  return a[base + m * p.K + k];
}

fn load_b(base: u32, k: u32, n: u32) -> f32 {
  if (TRANS_B == 1u) { return b[base + n * p.K + k]; }
  return b[base + k * p.N + n];
}

/** Writes row m, columns n0..n0+3 of the output (those inside N), adding the bias. */
fn store_row(batch: u32, m: u32, n0: u32, v: vec4<f32>) {
  if (m >= p.M) { return; }
  let row = (batch * p.M + m) * p.N;
  for (var j = 0u; j < 4u; j++) {
    let n = n0 + j;
    if (n < p.N) {
      var r = v[j];
      if (p.hasBias == 1u) { r += bias[n]; }
      out[row + n] = r;
    }
  }
}
