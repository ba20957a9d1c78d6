// kernels/cross_entropy.wgsl: softmax cross-entropy over logits [N, V] with i32 targets
// (kernels.ts "cross-entropy"). A target equal to ignoreIndex or outside [0, V) is ignored.
//   cross_entropy           logits@0 targets@1 loss@2 lse@3 Params{N, V, ignoreIndex}
//                           one workgroup of RW threads per row: lse = max + log Σ exp(x − max)
//   cross_entropy_backward  logits@0 targets@1 lse@2 dloss@3 dlogits@4 Params{N, V, ignoreIndex}
//                           one thread per element: dloss·(exp(x − lse) − [v = target]), 0 if ignored

override RW: u32 = 64;
override WG: u32 = 256;

struct Params { N: u32, V: u32, ignoreIndex: i32 }

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> targets: array<i32>;
@group(0) @binding(2) var<storage, read_write> loss: array<f32>;
@group(0) @binding(3) var<storage, read_write> lse: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

fn valid(t: i32, V: u32, ignore: i32) -> bool {
  return t != ignore && t >= 0 && u32(t) < V;
}

@compute @workgroup_size(RW)
fn cross_entropy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, lane: Lane) {
  let lid = lane.index;
  let r = wid.y * nwg.x + wid.x;
  if (r >= p.N) { return; }
  let base = r * p.V;
  var m = k_neg_inf(min(p.N, 0u));
  for (var c = lid; c < p.V; c += RW) { m = k_max(m, logits[base + c]); }
  m = wg_max(m, lane, RW);
  var s = 0.0;
  for (var c = lid; c < p.V; c += RW) { s += exp(logits[base + c] - m); }
  s = wg_sum(s, lane, RW);
  if (lid == 0u) {
    let l = m + log(s);
    lse[r] = l;
    let t = targets[r];
    loss[r] = select(0.0, l - logits[base + u32(max(t, 0))], valid(t, p.V, p.ignoreIndex));
  }
}

@group(0) @binding(2) var<storage, read> b_lse: array<f32>;
@group(0) @binding(3) var<storage, read> dloss: array<f32>;
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(5) var<uniform> bp: Params;

@compute @workgroup_size(WG)
fn cross_entropy_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let e = flat_id(wid, nwg, lid, WG);
  if (e >= bp.N * bp.V) { return; }
  let r = e / bp.V;
  let v = e % bp.V;
  let t = targets[r];
  var d = 0.0;
  if (valid(t, bp.V, bp.ignoreIndex)) {
    d = dloss[r] * (exp(logits[e] - b_lse[r]) - select(0.0, 1.0, u32(t) == v));
  }
  dlogits[e] = d;
}
