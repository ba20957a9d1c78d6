// kernels/reduce.wgsl: reductions (kernels.ts "reductions"). x is viewed as [outer, len, inner].
//   sum          x@0 out@1 Params{outer, len, inner}: one workgroup of RW threads per output (o, i),
//                threads striding over l, then a tree (wg_sum); grid = outer·inner groups, folded
//   max          x@0 out@1 idx@2 Params{outer, len, inner}: same shape; first argmax, NaN wins
//   sum_squares  x@0 out@1 Params{n, accumulate}: out[0] (+)= Σ x², in two passes past 8192 elements:
//                sum_squares_partial x@0 partial@1 Params{n, chunk} (one workgroup per chunk), then
//                sum_squares with SQUARE = 0 over the partials; RW threads per workgroup
// `max` shadows the builtin in this module: k_max / select instead.

override RW: u32 = 64;

struct Reduce { outer: u32, len: u32, inner: u32 }
struct SumSquares { n: u32, accumulate: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> rp: Reduce;
@group(0) @binding(2) var<storage, read_write> idx: array<f32>;
@group(0) @binding(3) var<uniform> mp: Reduce;
@group(0) @binding(2) var<uniform> sp: SumSquares;

@compute @workgroup_size(RW)
fn sum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, lane: Lane) {
  let lid = lane.index;
  let o = wid.y * nwg.x + wid.x; // output index o·inner + i
  if (o >= rp.outer * rp.inner) { return; }
  let base = (o / rp.inner) * rp.len * rp.inner + o % rp.inner;
  var acc = 0.0;
  for (var l = lid; l < rp.len; l += RW) { acc += x[base + l * rp.inner]; }
  let total = wg_sum(acc, lane, RW);
  if (lid == 0u) { out[o] = total; }
}

var<workgroup> arg: array<u32, 256>;

@compute @workgroup_size(RW)
fn max(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, lane: Lane) {
  let lid = lane.index;
  let o = wid.y * nwg.x + wid.x;
  if (o >= mp.outer * mp.inner) { return; }
  let base = (o / mp.inner) * mp.len * mp.inner + o % mp.inner;
  let t = lid;
  var best = k_neg_inf(min(mp.len, 0u));
  var at = 0xffffffffu;
  for (var l = t; l < mp.len; l += RW) {
    let v = x[base + l * mp.inner];
    if (at == 0xffffffffu || v > best || (k_isnan(v) && !k_isnan(best))) { best = v; at = l; }
  }
  k_red[t] = best;
  arg[t] = at;
  workgroupBarrier();
  for (var s = RW / 2u; s > 0u; s = s / 2u) {
    if (t < s) {
      let a = k_red[t]; let ai = arg[t];
      let b = k_red[t + s]; let bi = arg[t + s];
      // take b when a is empty, b is larger, b is NaN and a is not, or they tie and b comes first
      let an = k_isnan(a);
      let bn = k_isnan(b);
      let take = bi != 0xffffffffu && (ai == 0xffffffffu || b > a || (bn && !an) || ((b == a || (bn && an)) && bi < ai));
      if (take) { k_red[t] = b; arg[t] = bi; }
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    out[o] = k_red[0];
    idx[o] = f32(arg[0]);
  }
}

// sum_squares over many workgroups: workgroup g sums the squares of chunk g into partial[g];
// then one workgroup adds the partials up (SQUARE = 0) into out[0]. Small inputs skip the first pass.
override SQUARE: u32 = 1u;

struct Partial { n: u32, chunk: u32 }
@group(0) @binding(2) var<uniform> pp: Partial;

@compute @workgroup_size(RW)
fn sum_squares_partial(@builtin(workgroup_id) wid: vec3<u32>, lane: Lane) {
  let start = wid.x * pp.chunk;
  let end = min(start + pp.chunk, pp.n);
  var acc = 0.0;
  for (var i = start + lane.index; i < end; i += RW) { let v = x[i]; acc += v * v; }
  let total = wg_sum(acc, lane, RW);
  if (lane.index == 0u) { out[wid.x] = total; }
}

@compute @workgroup_size(RW)
fn sum_squares(lane: Lane) {
  var acc = 0.0;
  for (var i = lane.index; i < sp.n; i += RW) { let v = x[i]; acc += select(v, v * v, SQUARE == 1u); }
  let total = wg_sum(acc, lane, RW);
  if (lane.index == 0u) { out[0] = select(0.0, out[0], sp.accumulate == 1u) + total; }
}
