// kernels/matmul.wgsl: out[b, m, n] = Σ_k A[b, m, k]·B[b, k, n] (+ bias[n]), kernels.ts "matmul".
// Bindings: a@0, b@1, bias@2 (a dummy when hasBias = 0), out@3, Params@4.
// A[b] starts at b·strideA and is [M, K] ([K, M] when TRANS_A); B[b] at b·strideB, [K, N] ([N, K]
// when TRANS_B). TRANS_A/TRANS_B are override constants (one pipeline per combination, no branch in
// the inner loop) and equal the transA/transB params.
//   matmul        register blocking: each thread keeps 4×4 outputs in registers, no shared memory;
//                 workgroup WX×WY threads, grid [ceil(N/4WX), ceil(M/4WY), batch]. Fastest on lavapipe.
//   matmul_tiled  shared-memory tiles of 64×64 outputs (16×16 threads × 4×4), K in steps of 16;
//                 grid [ceil(N/64), ceil(M/64), batch]. Fastest on real GPUs.

override TRANS_A: u32 = 0u;
override TRANS_B: u32 = 0u;
override WX: u32 = 8u;
override WY: u32 = 8u;

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

@compute @workgroup_size(WX, WY)
fn matmul(@builtin(global_invocation_id) gid: vec3<u32>) {
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

const TILE: u32 = 64u;
const TK: u32 = 16u;
var<workgroup> tile_a: array<array<f32, 64>, 16>; // [k][m]
var<workgroup> tile_b: array<array<f32, 64>, 16>; // [k][n]

@compute @workgroup_size(16, 16)
fn matmul_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let batch = wid.z;
  let baseA = batch * p.strideA;
  let baseB = batch * p.strideB;
  let tm = wid.y * TILE;
  let tn = wid.x * TILE;
  let t = lid.y * 16u + lid.x; // 0..255
  var acc: array<vec4<f32>, 4>;
  for (var k0 = 0u; k0 < p.K; k0 += TK) {
    // 64×16 elements of A and of B per tile: 4 each per thread, zero outside the matrices
    for (var r = 0u; r < 4u; r++) {
      let e = t + r * 256u;
      let kk = e / TILE;
      let mn = e % TILE;
      let k = k0 + kk;
      var va = 0.0;
      if (k < p.K && tm + mn < p.M) { va = load_a(baseA, tm + mn, k); }
      tile_a[kk][mn] = va;
      var vb = 0.0;
      if (k < p.K && tn + mn < p.N) { vb = load_b(baseB, k, tn + mn); }
      tile_b[kk][mn] = vb;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      let bv = vec4<f32>(tile_b[kk][lid.x * 4u], tile_b[kk][lid.x * 4u + 1u], tile_b[kk][lid.x * 4u + 2u], tile_b[kk][lid.x * 4u + 3u]);
      for (var i = 0u; i < 4u; i++) {
        acc[i] += tile_a[kk][lid.y * 4u + i] * bv;
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    store_row(batch, tm + lid.y * 4u + i, tn + lid.x * 4u, acc[i]);
  }
}
