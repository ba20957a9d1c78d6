// kernels/copy.wgsl: strided gather and its adjoint (kernels.ts "movement"), one thread per
// element of the contiguous side, grid folded into x and y.
//   copy           x@0 out@1 Params: out[i0..i5] = x[offset + Σ i_j·s_j]
//   copy_backward  dout@0 dx@1 Params: dx[offset + Σ i_j·s_j] += dout[i0..i5] (injective: no races)
// Params{n, rank, offset, d0..d5, s0..s5}; unused dims are 1. Strides are read as i32.

override WG: u32 = 256;

struct Params { n: u32, rank: u32, offset: i32, d0: u32, d1: u32, d2: u32, d3: u32, d4: u32, d5: u32,
  s0: i32, s1: i32, s2: i32, s3: i32, s4: i32, s5: i32 }

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

/** The strided source index of contiguous element o (i5 fastest). */
fn strided(o: u32) -> u32 {
  var r = o;
  var idx = p.offset;
  let i5 = r % p.d5; r = r / p.d5; idx += i32(i5) * p.s5;
  let i4 = r % p.d4; r = r / p.d4; idx += i32(i4) * p.s4;
  let i3 = r % p.d3; r = r / p.d3; idx += i32(i3) * p.s3;
  let i2 = r % p.d2; r = r / p.d2; idx += i32(i2) * p.s2;
  let i1 = r % p.d1; r = r / p.d1; idx += i32(i1) * p.s1;
  idx += i32(r) * p.s0;
  return u32(idx);
}

@compute @workgroup_size(WG)
fn copy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat_id(wid, nwg, lid, WG);
  if (i < p.n) { dst[i] = src[strided(i)]; }
}

@compute @workgroup_size(WG)
fn copy_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat_id(wid, nwg, lid, WG);
  if (i < p.n) {
    let j = strided(i);
    dst[j] = dst[j] + src[i];
  }
}
