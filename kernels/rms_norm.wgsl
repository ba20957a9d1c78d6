// kernels/rms_norm.wgsl: RMSNorm over the last dim C of x [rows, C] (kernels.ts "normalization").
//   rms_norm                   x@0 weight@1 out@2 rstd@3 Params{rows, C, eps}; one workgroup per row
//   rms_norm_backward          dout@0 x@1 weight@2 rstd@3 dx@4 Params{rows, C}; one workgroup per row:
//                              dx = rstd·(g − xhat·mean(g·xhat)), g = dout·weight, xhat = x·rstd
//   rms_norm_backward_dweight  dout@0 x@1 rstd@2 dweight@3 Params{rows, C}; one thread per column
// Rows are folded into workgroup x and y.

override RW: u32 = 64;
override WG: u32 = 64;

struct Forward { rows: u32, C: u32, eps: f32 }
struct Backward { rows: u32, C: u32 }

@group(0) @binding(0) var<storage, read> f_x: array<f32>;
@group(0) @binding(1) var<storage, read> f_w: array<f32>;
@group(0) @binding(2) var<storage, read_write> f_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> f_rstd: array<f32>;
@group(0) @binding(4) var<uniform> fp: Forward;

@compute @workgroup_size(RW)
fn rms_norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, lane: Lane) {
  let lid = lane.index;
  let r = wid.y * nwg.x + wid.x;
  if (r >= fp.rows) { return; }
  let base = r * fp.C;
  var ss = 0.0;
  for (var c = lid; c < fp.C; c += RW) { let v = f_x[base + c]; ss += v * v; }
  let rstd = 1.0 / sqrt(wg_sum(ss, lane, RW) / f32(fp.C) + fp.eps);
  for (var c = lid; c < fp.C; c += RW) { f_out[base + c] = f_x[base + c] * rstd * f_w[c]; }
  if (lid == 0u) { f_rstd[r] = rstd; }
}

@group(0) @binding(0) var<storage, read> dout: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> b_rstd: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
@group(0) @binding(5) var<uniform> bp: Backward;

@compute @workgroup_size(RW)
fn rms_norm_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, lane: Lane) {
  let lid = lane.index;
  let r = wid.y * nwg.x + wid.x;
  if (r >= bp.rows) { return; }
  let base = r * bp.C;
  let rstd = b_rstd[r];
  var sgx = 0.0;
  for (var c = lid; c < bp.C; c += RW) { sgx += dout[base + c] * w[c] * x[base + c] * rstd; }
  let mgx = wg_sum(sgx, lane, RW) / f32(bp.C);
  for (var c = lid; c < bp.C; c += RW) {
    dx[base + c] = rstd * (dout[base + c] * w[c] - x[base + c] * rstd * mgx);
  }
}

@group(0) @binding(2) var<storage, read> d_rstd: array<f32>;
@group(0) @binding(3) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(4) var<uniform> dp: Backward;

@compute @workgroup_size(WG)
fn rms_norm_backward_dweight(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= dp.C) { return; }
  var dw = 0.0;
  for (var r = 0u; r < dp.rows; r++) { dw += dout[r * dp.C + c] * x[r * dp.C + c] * d_rstd[r]; }
  dweight[c] = dw;
}
