// kernels/softmax.wgsl: row softmax (kernels.ts "softmax"), one workgroup of RW threads per row,
// threads striding over the columns, workgroup reductions from common.wgsl; rows folded into x, y.
//   softmax           x@0 out@1 Params{rows, cols}: out = exp(x − max) / Σ exp(x − max)
//   softmax_backward  out@0 dout@1 dx@2 Params{rows, cols}: dx = out·(dout − Σ dout·out)

override RW: u32 = 64;

struct Params { rows: u32, cols: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(RW)
fn softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, lane: Lane) {
  let lid = lane.index;
  let r = wid.y * nwg.x + wid.x;
  if (r >= p.rows) { return; }
  let base = r * p.cols;
  var m = k_neg_inf(min(p.rows, 0u));
  for (var c = lid; c < p.cols; c += RW) { m = k_max(m, x[base + c]); }
  m = wg_max(m, lane, RW);
  var s = 0.0;
  for (var c = lid; c < p.cols; c += RW) { s += exp(x[base + c] - m); }
  s = wg_sum(s, lane, RW);
  let inv = 1.0 / s;
  for (var c = lid; c < p.cols; c += RW) { out[base + c] = exp(x[base + c] - m) * inv; }
}

@group(0) @binding(0) var<storage, read> y: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> bp: Params;

@compute @workgroup_size(RW)
fn softmax_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, lane: Lane) {
  let lid = lane.index;
  let r = wid.y * nwg.x + wid.x;
  if (r >= bp.rows) { return; }
  let base = r * bp.cols;
  var dot = 0.0;
  for (var c = lid; c < bp.cols; c += RW) { dot += dy[base + c] * y[base + c]; }
  dot = wg_sum(dot, lane, RW);
  for (var c = lid; c < bp.cols; c += RW) { dx[base + c] = y[base + c] * (dy[base + c] - dot); }
}
