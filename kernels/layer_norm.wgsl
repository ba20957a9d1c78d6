// kernels/layer_norm.wgsl: LayerNorm over the last dim C of x [rows, C] (kernels.ts "normalization").
//   layer_norm                   x@0 weight@1 bias@2 out@3 mean@4 rstd@5 Params{rows, C, eps}
//                                one workgroup of RW threads per row (two-pass mean / variance)
//   layer_norm_backward          dout@0 x@1 weight@2 mean@3 rstd@4 dx@5 Params{rows, C}
//                                one workgroup per row: dx = rstd·(g − mean(g) − xhat·mean(g·xhat))
//   layer_norm_backward_dweight  dout@0 x@1 mean@2 rstd@3 dweight@4 dbias@5 Params{rows, C}
//                                one thread per column: dweight = Σ_r dout·xhat, dbias = Σ_r dout
// Rows are folded into workgroup x and y.

override RW: u32 = 64;
override WG: u32 = 64;

struct Forward { rows: u32, C: u32, eps: f32 }
struct Backward { rows: u32, C: u32 }

@group(0) @binding(0) var<storage, read> f_x: array<f32>;
@group(0) @binding(1) var<storage, read> f_w: array<f32>;
@group(0) @binding(2) var<storage, read> f_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> f_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> f_mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> f_rstd: array<f32>;
@group(0) @binding(6) var<uniform> fp: Forward;

@compute @workgroup_size(RW)
fn layer_norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, lane: Lane) {
  let lid = lane.index;
  let r = wid.y * nwg.x + wid.x;
  if (r >= fp.rows) { return; }
  let base = r * fp.C;
  let n = f32(fp.C);
  var s = 0.0;
  for (var c = lid; c < fp.C; c += RW) { s += f_x[base + c]; }
  let mean = wg_sum(s, lane, RW) / n;
  var v = 0.0;
  for (var c = lid; c < fp.C; c += RW) { let d = f_x[base + c] - mean; v += d * d; }
  let rstd = 1.0 / sqrt(wg_sum(v, lane, RW) / n + fp.eps);
  for (var c = lid; c < fp.C; c += RW) { f_out[base + c] = (f_x[base + c] - mean) * rstd * f_w[c] + f_b[c]; }
  if (lid == 0u) { f_mean[r] = mean; f_rstd[r] = rstd; }
}

@group(0) @binding(0) var<storage, read> dout: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> b_mean: array<f32>;
@group(0) @binding(4) var<storage, read> b_rstd: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<uniform> bp: Backward;

@compute @workgroup_size(RW)
fn layer_norm_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, lane: Lane) {
  let lid = lane.index;
  let r = wid.y * nwg.x + wid.x;
  if (r >= bp.rows) { return; }
  let base = r * bp.C;
  let mean = b_mean[r];
  let rstd = b_rstd[r];
  var sg = 0.0;
  var sgx = 0.0;
  for (var c = lid; c < bp.C; c += RW) {
    let g = dout[base + c] * w[c];
    sg += g;
    sgx += g * (x[base + c] - mean) * rstd;
  }
  let n = f32(bp.C);
  let sums = wg_sum2(vec2<f32>(sg, sgx), lane, RW) / n;
  let mg = sums.x;
  let mgx = sums.y;
  for (var c = lid; c < bp.C; c += RW) {
    let g = dout[base + c] * w[c];
    let xhat = (x[base + c] - mean) * rstd;
    dx[base + c] = rstd * (g - mg - xhat * mgx);
  }
}

@group(0) @binding(2) var<storage, read> d_mean: array<f32>;
@group(0) @binding(3) var<storage, read> d_rstd: array<f32>;
@group(0) @binding(4) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(5) var<storage, read_write> dbias: array<f32>;
@group(0) @binding(6) var<uniform> dp: Backward;

@compute @workgroup_size(WG)
fn layer_norm_backward_dweight(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= dp.C) { return; }
  var dw = 0.0;
  var db = 0.0;
  for (var r = 0u; r < dp.rows; r++) {
    let d = dout[r * dp.C + c];
    dw += d * (x[r * dp.C + c] - d_mean[r]) * d_rstd[r];
    db += d;
  }
  dweight[c] = dw;
  dbias[c] = db;
}
