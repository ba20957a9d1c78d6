// kernels/matmul_f16.wgsl: matmul (kernels.ts "matmul") multiplying in f16, for inference on
// adapters with shader-f16 (shaders.ts puts `enable f16;` first). An opt-in (KILN_WEBGPU_F16=1 or
// createBackend("webgpu", { f16: true })), never the default: inputs are rounded to f16 (11
// significant bits; |x| > 65504 overflows) and runs of 4 products are summed in f16 before joining
// an f32 total: the error is about 2e-3 of the outputs' RMS (measured for K = 16..3072), fine for
// inference, not for training (f32 gradients). Tensors stay f32 in memory.
//   matmul_f16_tiled  same bindings, grid and 64×64 tiles as matmul_tiled (kernels/matmul.wgsl):
//                     a@0 b@1 bias@2 out@3 Params@4; tiles of f16 in shared memory (half the bytes)
// Params, bindings, load_a/load_b/store_row and TRANS_A/TRANS_B: kernels/matmul_common.wgsl.
// Reference: out[b, m, n] = Σ_k A[b, m, k]·B[b, k, n] (+ bias[n]).

const TILE: u32 = 64u;
const TK: u32 = 16u;
const RUN: u32 = 4u; // products summed in f16 before joining the f32 total
var<workgroup> tile_a: array<array<f16, 64>, 16>; // [k][m]
var<workgroup> tile_b: array<array<f16, 64>, 16>; // [k][n]

@compute @workgroup_size(16, 16)
fn matmul_f16_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
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
