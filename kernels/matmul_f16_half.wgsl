// kernels/matmul_f16_half.wgsl: kernels.ts "matmul" multiplying in f16 (autocast, shader-f16) with
// B in f16 storage (dtypeB = 1): the f16 copies autocast keeps of activations for the backward
// (src/ops/autocast.ts) read as they are, with no f32 copy first. Same tiles, runs and totals as
// matmul_f16_tiled (kernels/matmul_f16.wgsl), so the result has the bits that kernel gives on the
// widened B (f16 → f32 → f16 is exact). Its own bindings: matmul_common.wgsl declares B as f32.
//   matmul_f16_half  a@0 b@1 (u32 words, two f16 each) bias@2 out@3 Params@4; 64×64 tiles.
// Override constants TRANS_A, TRANS_B (as matmul_common.wgsl).

override TRANS_A: u32 = 0u;
override TRANS_B: u32 = 0u;

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

/** B(k, n) from its f16 element (base and the index count elements, not words). */
fn load_b(base: u32, k: u32, n: u32) -> f32 {
  var i = base + k * p.N + n;
  if (TRANS_B == 1u) { i = base + n * p.K + k; }
  return bitcast<f32>(widen_bits(half_of(b[i >> 1u], i), 1u));
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

const TILE: u32 = 64u;
const TK: u32 = 16u;
const RUN: u32 = 4u; // products summed in f16 before joining the f32 total
var<workgroup> tile_a: array<array<f16, 64>, 16>; // [k][m]
var<workgroup> tile_b: array<array<f16, 64>, 16>; // [k][n]

@compute @workgroup_size(16, 16)
fn matmul_f16_half(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let batch = wid.z;
  let baseA = batch * p.strideA;
  let baseB = batch * p.strideB;
  let tm = wid.y * TILE;
  let tn = wid.x * TILE;
  let t = lid.y * 16u + lid.x; // 0..255
  var acc: array<vec4<f32>, 4>;
  for (var i = 0u; i < 4u; i++) { acc[i] = vec4<f32>(0.0); }
  for (var k0 = 0u; k0 < p.K; k0 += TK) {
    for (var r = 0u; r < 4u; r++) {
      let e = t + r * 256u;
      let kk = e / TILE;
      let mn = e % TILE;
      let k = k0 + kk;
      var va = 0.0;
      if (k < p.K && tm + mn < p.M) { va = load_a(baseA, tm + mn, k); }
      tile_a[kk][mn] = f16(va);
      var vb = 0.0;
      if (k < p.K && tn + mn < p.N) { vb = load_b(baseB, k, tn + mn); }
      tile_b[kk][mn] = f16(vb);
    }
    workgroupBarrier();
    for (var k1 = 0u; k1 < TK; k1 += RUN) {
      var part: array<vec4<f16>, 4>;
      for (var i = 0u; i < 4u; i++) { part[i] = vec4<f16>(0.0h); }
      for (var kk = k1; kk < k1 + RUN; kk++) {
        let c = lid.x * 4u;
        let bv = vec4<f16>(tile_b[kk][c], tile_b[kk][c + 1u], tile_b[kk][c + 2u], tile_b[kk][c + 3u]);
        for (var i = 0u; i < 4u; i++) { part[i] += tile_a[kk][lid.y * 4u + i] * bv; }
      }
      for (var i = 0u; i < 4u; i++) { acc[i] += vec4<f32>(part[i]); }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    store_row(batch, tm + lid.y * 4u + i, tn + lid.x * 4u, acc[i]);
  }
}
