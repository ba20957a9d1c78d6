// kernels/cast.wgsl: dtype cast (kernels.ts "cast"; the entry point is cast_dtype because `cast` is
// a reserved word in WGSL), helpers from half.wgsl. Buffers are bound as
// u32 words whatever their dtype, so f32 values move as bits (NaN payloads, subnormals intact).
//   cast_dtype  x@0 out@1 Params{n}; override SRC, DST (0 f32, 1 f16, 2 bf16)
// An f32 out: one thread per element. A 16-bit out: one thread per word (elements 2w and 2w + 1,
// no two threads write one word); an odd n leaves the last word's upper half zero.

override WG: u32 = 256;
override SRC: u32 = 0u;
override DST: u32 = 0u;

struct Params { n: u32 }

@group(0) @binding(0) var<storage, read> x: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<uniform> p: Params;

/** Element i of x as f32 bits. */
fn read_bits(i: u32) -> u32 {
  if (SRC == DT_F32) { return x[i]; }
  return widen_bits(half_of(x[i >> 1u], i), SRC);
}

@compute @workgroup_size(WG)
fn cast_dtype(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let t = flat_id(wid, nwg, lid, WG);
  if (DST == DT_F32) {
    if (t < p.n) { out[t] = read_bits(t); }
    return;
  }
  let i = 2u * t;
  if (i >= p.n) { return; }
  let lo = narrow_bits(read_bits(i), DST);
  var hi = 0u;
  if (i + 1u < p.n) { hi = narrow_bits(read_bits(i + 1u), DST); }
  out[t] = lo | (hi << 16u);
}
