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

// ---- matmul_vec4: `matmul` with 16-byte loads, for operands whose vector dim is a multiple of 4
// (A: K, or M when TRANS_A; B: N, or K when TRANS_B; strides too). Per step of 4 k: a 4×4 block of
// A and of B in eight vec4 loads (transposed in registers where needed), 16 vec4 multiply-adds.

@group(0) @binding(0) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> b4: array<vec4<f32>>;

@compute @workgroup_size(WX, WY)
fn matmul_vec4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let batch = gid.z;
  let m0 = gid.y * 4u;
  let n0 = gid.x * 4u;
  if (m0 >= p.M || n0 >= p.N) { return; }
  let K = p.K;
  let M4 = p.M / 4u;
  let N4 = p.N / 4u;
  let baseA = batch * p.strideA / 4u; // in vec4s
  let baseB = batch * p.strideB / 4u;
  // rows/columns past the edge read a valid neighbour and are never stored
  let m1 = min(m0 + 1u, p.M - 1u); let m2 = min(m0 + 2u, p.M - 1u); let m3 = min(m0 + 3u, p.M - 1u);
  let n1 = min(n0 + 1u, p.N - 1u); let n2 = min(n0 + 2u, p.N - 1u); let n3 = min(n0 + 3u, p.N - 1u);
  // vec4 index of each operand's first load; per step of 4 k it moves by `step`
  var ia = baseA + select(m0 * K / 4u, m0 / 4u, TRANS_A == 1u);
  let sa = select(1u, 4u * M4, TRANS_A == 1u);
  var ib = baseB + select(n0 / 4u, n0 * K / 4u, TRANS_B == 1u);
  let sb = select(4u * N4, 1u, TRANS_B == 1u);
  let ka = select((m1 - m0) * K / 4u, M4, TRANS_A == 1u); // from row m0 to m1 (or k to k + 1)
  let ka2 = select((m2 - m0) * K / 4u, 2u * M4, TRANS_A == 1u);
  let ka3 = select((m3 - m0) * K / 4u, 3u * M4, TRANS_A == 1u);
  let kb = select(N4, (n1 - n0) * K / 4u, TRANS_B == 1u);
  let kb2 = select(2u * N4, (n2 - n0) * K / 4u, TRANS_B == 1u);
  let kb3 = select(3u * N4, (n3 - n0) * K / 4u, TRANS_B == 1u);
  var acc0 = vec4<f32>(0.0); var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0); var acc3 = vec4<f32>(0.0);
  // K need not be a multiple of 4 only when neither operand is vectorised along K
  let kEnd = select(K, K & ~3u, TRANS_A == 1u && TRANS_B == 0u);
  var k = 0u;
  for (; k < kEnd; k += 4u) {
    let x0 = a4[ia]; let x1 = a4[ia + ka]; let x2 = a4[ia + ka2]; let x3 = a4[ia + ka3];
    let y0 = b4[ib]; let y1 = b4[ib + kb]; let y2 = b4[ib + kb2]; let y3 = b4[ib + kb3];
    ia += sa;
    ib += sb;
    // a_i: row i of the A block over k..k+3; b_j: row k+j of the B block over n0..n0+3
    var a0 = x0; var a1 = x1; var a2 = x2; var a3 = x3;
    if (TRANS_A == 1u) { // x_j is column k+j over m0..m0+3
      a0 = vec4<f32>(x0.x, x1.x, x2.x, x3.x); a1 = vec4<f32>(x0.y, x1.y, x2.y, x3.y);
      a2 = vec4<f32>(x0.z, x1.z, x2.z, x3.z); a3 = vec4<f32>(x0.w, x1.w, x2.w, x3.w);
    }
    var b0 = y0; var b1 = y1; var b2 = y2; var b3 = y3;
    if (TRANS_B == 1u) { // y_j is row n_j of B over k..k+3
      b0 = vec4<f32>(y0.x, y1.x, y2.x, y3.x); b1 = vec4<f32>(y0.y, y1.y, y2.y, y3.y);
      b2 = vec4<f32>(y0.z, y1.z, y2.z, y3.z); b3 = vec4<f32>(y0.w, y1.w, y2.w, y3.w);
    }
    acc0 += a0.x * b0 + a0.y * b1 + a0.z * b2 + a0.w * b3;
    acc1 += a1.x * b0 + a1.y * b1 + a1.z * b2 + a1.w * b3;
    acc2 += a2.x * b0 + a2.y * b1 + a2.z * b2 + a2.w * b3;
    acc3 += a3.x * b0 + a3.y * b1 + a3.z * b2 + a3.w * b3;
  }
  for (; k < K; k++) { // TRANS_A and not TRANS_B: A's column and B's row at k are both vectors
    let c = a4[baseA + k * M4 + m0 / 4u];
    let bv = b4[baseB + k * N4 + n0 / 4u];
    acc0 += c.x * bv; acc1 += c.y * bv; acc2 += c.z * bv; acc3 += c.w * bv;
  }
  store_row(batch, m0, n0, acc0);
  store_row(batch, m0 + 1u, n0, acc1);
  store_row(batch, m0 + 2u, n0, acc2);
  store_row(batch, m0 + 3u, n0, acc3);
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
