// kernels/matmul.wgsl: out[b, m, n] = Σ_k A[b, m, k]·B[b, k, n] (+ bias[n]), kernels.ts "matmul".
// Params, bindings, load_a/load_b/store_row and TRANS_A/TRANS_B: kernels/matmul_common.wgsl.
//   matmul           register blocking: each thread keeps 4×4 outputs in registers, no shared
//                    memory; workgroup WX×WY threads, grid [ceil(N/4WX), ceil(M/4WY), batch]
//   matmul_vec4      register blocking for CPU adapters: A read workgroup-uniform, B in 16-byte
//                    loads (B's contiguous dim % 4 == 0); R rows × 4·CV·WX columns per workgroup.
//                    Fastest on lavapipe
//   matmul_vec       M = 1, B [K, N]: GEMV, a thread per 4 outputs (see its section)
//   matmul_vec_rows  M = 1, B [N, K]: GEMV, a workgroup per 4 outputs, reduced with wg_sum4
//   matmul_tiled     shared-memory tiles of 64×64 outputs (16×16 threads × 4×4), K in steps of 16;
//                    grid [ceil(N/64), ceil(M/64), batch]. Fastest on real GPUs
// The row reductions (wg_sum4, Lane) come from workgroup_reduce.wgsl or subgroup_reduce.wgsl.

override WX: u32 = 8u;
override WY: u32 = 8u;

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

// ---- matmul_vec4: for SIMD-across-invocations CPUs (lavapipe), where an invocation-dependent load
// is a gather but a load the same for the whole workgroup is one load and a broadcast. A workgroup
// of WX invocations computes R rows × WX·CV·4 columns: each A value is a workgroup-uniform load;
// each invocation keeps R × CV vec4 accumulators over its columns 4q..4q+3, q = q0 + c·WX, and
// reads them from B with 16-byte loads, neighbours reading neighbouring vectors. Needs B's
// contiguous dim (N, or K when TRANS_B) and strideB to be multiples of 4; A is read any way.
// Grid [ceil(ceil(N/4) / (WX·CV)), ceil(M/R), batch].

override R: u32 = 8u;
override CV: u32 = 2u;
const R_MAX: u32 = 16u;
const CV_MAX: u32 = 4u;

@group(0) @binding(0) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> b4: array<vec4<f32>>;

@compute @workgroup_size(WX)
fn matmul_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let batch = wid.z;
  let m0 = wid.y * R;
  let q0 = wid.x * WX * CV + li;
  let K = p.K;
  let Q = (p.N + 3u) / 4u; // vec4 column groups
  let baseA = batch * p.strideA;
  let baseB = batch * p.strideB;
  var acc: array<array<vec4<f32>, CV_MAX>, R_MAX>;
  if (TRANS_B == 0u) { // B [K, N], N % 4 == 0: row k of B over the invocation's columns is one vector
    for (var k = 0u; k < K; k++) {
      var bv: array<vec4<f32>, CV_MAX>;
      for (var c = 0u; c < CV; c++) { bv[c] = b4[(baseB + k * p.N) / 4u + min(q0 + c * WX, Q - 1u)]; }
      for (var r = 0u; r < R; r++) {
        let av = load_a(baseA, min(m0 + r, p.M - 1u), k);
        for (var c = 0u; c < CV; c++) { acc[r][c] += av * bv[c]; }
      }
    }
  } else { // B [N, K], K % 4 == 0: each column's next 4 values are one vector; transposed in registers
    for (var k = 0u; k < K; k += 4u) {
      var bv: array<array<vec4<f32>, 4>, CV_MAX>; // [c][j]: row k+j of the B block over 4 columns
      for (var c = 0u; c < CV; c++) {
        let n = 4u * (q0 + c * WX);
        let y0 = b4[(baseB + min(n, p.N - 1u) * K + k) / 4u];
        let y1 = b4[(baseB + min(n + 1u, p.N - 1u) * K + k) / 4u];
        let y2 = b4[(baseB + min(n + 2u, p.N - 1u) * K + k) / 4u];
        let y3 = b4[(baseB + min(n + 3u, p.N - 1u) * K + k) / 4u];
        bv[c][0] = vec4<f32>(y0.x, y1.x, y2.x, y3.x); bv[c][1] = vec4<f32>(y0.y, y1.y, y2.y, y3.y);
        bv[c][2] = vec4<f32>(y0.z, y1.z, y2.z, y3.z); bv[c][3] = vec4<f32>(y0.w, y1.w, y2.w, y3.w);
      }
      for (var r = 0u; r < R; r++) {
        let m = min(m0 + r, p.M - 1u);
        let a0 = load_a(baseA, m, k); let a1 = load_a(baseA, m, k + 1u);
        let a2 = load_a(baseA, m, k + 2u); let a3 = load_a(baseA, m, k + 3u);
        for (var c = 0u; c < CV; c++) { acc[r][c] += a0 * bv[c][0] + a1 * bv[c][1] + a2 * bv[c][2] + a3 * bv[c][3]; }
      }
    }
  }
  for (var r = 0u; r < R; r++) {
    for (var c = 0u; c < CV; c++) { store_row(batch, m0 + r, 4u * (q0 + c * WX), acc[r][c]); }
  }
}

// ---- M = 1 (one row of A: decoding a token): matmul_vec and matmul_vec_rows. A[b] is the vector
// a[b·strideA .. + K] whether or not TRANS_A. Both need 16-byte alignment of their vector dim.
//   matmul_vec       B [K, N] (TRANS_B = 0, N % 4 == 0): one thread per 4 outputs streams its
//                    columns down K; workgroup WV×KS threads, KS slices of K added in shared memory;
//                    grid [ceil(N/4WV), 1, batch]
//   matmul_vec_rows  B [N, K] (TRANS_B = 1, K % 4 == 0): one workgroup of RW threads per 4 outputs
//                    (rows of B), threads striding over K, then wg_sum4; grid ceil(N/4) folded, batch

override WV: u32 = 64u;
override KS: u32 = 1u;
override RW: u32 = 64u;
var<workgroup> vec_part: array<vec4<f32>, 256>;

@compute @workgroup_size(WV, KS)
fn matmul_vec(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let batch = wid.z;
  let n0 = (wid.x * WV + lid.x) * 4u;
  let baseA = batch * p.strideA;
  let baseB = batch * p.strideB;
  var acc = vec4<f32>(0.0);
  if (n0 < p.N) {
    for (var k = lid.y; k < p.K; k += KS) { acc += a[baseA + k] * b4[(baseB + k * p.N + n0) / 4u]; }
  }
  if (KS > 1u) {
    vec_part[lid.y * WV + lid.x] = acc;
    workgroupBarrier();
    if (lid.y == 0u) { for (var s = 1u; s < KS; s++) { acc += vec_part[s * WV + lid.x]; } }
  }
  if (lid.y == 0u && n0 < p.N) { store_row(batch, 0u, n0, acc); }
}

@compute @workgroup_size(RW)
fn matmul_vec_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, lane: Lane) {
  let batch = wid.z;
  let n0 = (wid.y * nwg.x + wid.x) * 4u;
  if (n0 >= p.N) { return; }
  let K = p.K;
  let baseA = (batch * p.strideA) / 4u;
  let baseB = batch * p.strideB;
  let r0 = (baseB + n0 * K) / 4u;
  let r1 = (baseB + min(n0 + 1u, p.N - 1u) * K) / 4u;
  let r2 = (baseB + min(n0 + 2u, p.N - 1u) * K) / 4u;
  let r3 = (baseB + min(n0 + 3u, p.N - 1u) * K) / 4u;
  var acc = vec4<f32>(0.0);
  for (var k4 = lane.index; k4 < K / 4u; k4 += RW) {
    let av = a4[baseA + k4];
    acc += vec4<f32>(dot(av, b4[r0 + k4]), dot(av, b4[r1 + k4]), dot(av, b4[r2 + k4]), dot(av, b4[r3 + k4]));
  }
  let total = wg_sum4(acc, lane, RW);
  if (lane.index == 0u) { store_row(batch, 0u, n0, total); }
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
