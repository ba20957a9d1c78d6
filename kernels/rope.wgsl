// kernels/rope.wgsl: "rotate half" rotary embedding on x [B, T, H, D] (kernels.ts "rope"), one
// thread per rotated pair (b, t, h, i < D/2), grid folded into x and y.
//   rope           x@0 table@1 out@2 Params{B, T, H, D, theta, offset}
//   rope_backward  dout@0 table@1 dx@2 (same Params): the transposed rotation (sin negated)
// table[pos·D/2 + i] = (cos, sin) of pos·theta^(−2i/D), made by the host in float64 (ops/rope.ts):
// float32 sin/cos of large angles formed in float32 would be off by ~1e-4 at position 5000, and
// drivers do not all fuse fma, so the angle cannot be formed exactly on the GPU.

override WG: u32 = 256;

struct Params { B: u32, T: u32, H: u32, D: u32, theta: f32, offset: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> table: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

fn rotate(i: u32, sign: f32) {
  let half = p.D / 2u;
  if (i >= p.B * p.T * p.H * half) { return; }
  let pair = i % half;
  let row = i / half; // (b·T + t)·H + h
  let t = (row / p.H) % p.T;
  let cs = table[(p.offset + t) * half + pair];
  let c = cs.x;
  let s = sign * cs.y;
  let base = row * p.D;
  let x1 = x[base + pair];
  let x2 = x[base + pair + half];
  out[base + pair] = x1 * c - x2 * s;
  out[base + pair + half] = x2 * c + x1 * s;
}

@compute @workgroup_size(WG)
fn rope(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  rotate(flat_id(wid, nwg, lid, WG), 1.0);
}

@compute @workgroup_size(WG)
fn rope_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  rotate(flat_id(wid, nwg, lid, WG), -1.0);
}
