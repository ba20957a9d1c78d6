// kernels/matmul_half.wgsl: kernels.ts "matmul" with B in 16-bit storage (dtypeB f16 or bf16: the
// frozen weights of a 16-bit base), widened exactly to f32 as each element is loaded (half.wgsl:
// u32 words and integer ops, no shader-f16); the arithmetic is f32, as the f32 kernels'.
//   matmul_half  a@0 b@1 (u32 words, two elements each) bias@2 out@3 Params@4; 4×4 outputs per
//                thread in registers, WX×WY threads, grid [ceil(N/4WX), ceil(M/4WY), batch].
// Override constants TRANS_A, TRANS_B (as matmul_common.wgsl) and DTYPE_B (1 f16, 2 bf16).
// Its own bindings: matmul_common.wgsl declares B as f32.

override WX: u32 = 8u;
override WY: u32 = 8u;
override TRANS_A: u32 = 0u;
override TRANS_B: u32 = 0u;
override DTYPE_B: u32 = 2u;

struct Params { batch: u32, M: u32, N: u32, K: u32, transA: u32, transB: u32, strideA: u32, strideB: u32, hasBias: u32 }

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<u32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

fn load_a(base: u32, m: u32, k: u32) -> f32 {
  if (TRANS_A == 1u) { return a[base + k * p.M + m]; }
  return a[base + m * p.K + k];
}

/** B(k, n) widened from its 16-bit element (base and the index count elements, not words). */
fn load_b(base: u32, k: u32, n: u32) -> f32 {
  var i = base + k * p.N + n;
  if (TRANS_B == 1u) { i = base + n * p.K + k; }
  return bitcast<f32>(widen_bits(half_of(b[i >> 1u], i), DTYPE_B));
}

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

@compute @workgroup_size(WX, WY)
fn matmul_half(@builtin(global_invocation_id) gid: vec3<u32>) {
  let batch = gid.z;
  let m0 = gid.y * 4u;
  let n0 = gid.x * 4u;
  if (m0 >= p.M || n0 >= p.N) { return; }
  let baseA = batch * p.strideA;
  let baseB = batch * p.strideB;
  // rows/columns past the edge read a valid neighbour and are never stored
  let m1 = min(m0 + 1u, p.M - 1u); let m2 = min(m0 + 2u, p.M - 1u); let m3 = min(m0 + 3u, p.M - 1u);
  let n1 = min(n0 + 1u, p.N - 1u); let n2 = min(n0 + 2u, p.N - 1u); let n3 = min(n0 + 3u, p.N - 1u);
  var acc0 = vec4<f32>(0.0); var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0); var acc3 = vec4<f32>(0.0);
  for (var k = 0u; k < p.K; k++) {
    let bv = vec4<f32>(load_b(baseB, k, n0), load_b(baseB, k, n1), load_b(baseB, k, n2), load_b(baseB, k, n3));
    acc0 += load_a(baseA, m0, k) * bv;
    acc1 += load_a(baseA, m1, k) * bv;
    acc2 += load_a(baseA, m2, k) * bv;
    acc3 += load_a(baseA, m3, k) * bv;
  }
  store_row(batch, m0, n0, acc0);
  store_row(batch, m0 + 1u, n0, acc1);
  store_row(batch, m0 + 2u, n0, acc2);
  store_row(batch, m0 + 3u, n0, acc3);
}
