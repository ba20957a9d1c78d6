// kernels/embedding.wgsl: token embedding lookup (kernels.ts "embedding"); ids are i32.
//   embedding           ids@0 weight@1 out@2 Params{n, V, C}: one thread per output element;
//                       an id outside [0, V) gives a zero row
//   embedding_half      ids@0 weight@1 (16-bit, u32 words) out@2 Params{n, V, C}; override DTYPE
//                       (1 f16, 2 bf16): embedding from a 16-bit table, widened (half.wgsl)
//   embedding_backward  ids@0 dout@1 dweight@2 Params{n, V, C}: dweight[ids[i], :] += dout[i, :];
//                       one thread per column c walks i in order (deterministic, no atomics)

override WG: u32 = 256;

struct Params { n: u32, V: u32, C: u32 }

@group(0) @binding(0) var<storage, read> ids: array<i32>;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn embedding(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let e = flat_id(wid, nwg, lid, WG);
  if (e >= p.n * p.C) { return; }
  let id = ids[e / p.C];
  var v = 0.0;
  if (id >= 0 && u32(id) < p.V) { v = src[u32(id) * p.C + e % p.C]; }
  dst[e] = v;
}

override DTYPE: u32 = 2u;
@group(0) @binding(1) var<storage, read> src16: array<u32>;

@compute @workgroup_size(WG)
fn embedding_half(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let e = flat_id(wid, nwg, lid, WG);
  if (e >= p.n * p.C) { return; }
  let id = ids[e / p.C];
  var v = 0.0;
  if (id >= 0 && u32(id) < p.V) {
    let j = u32(id) * p.C + e % p.C;
    v = bitcast<f32>(widen_bits(half_of(src16[j >> 1u], j), DTYPE));
  }
  dst[e] = v;
}

@compute @workgroup_size(WG)
fn embedding_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= p.C) { return; }
  for (var i = 0u; i < p.n; i++) {
    let id = ids[i];
    if (id >= 0 && u32(id) < p.V) {
      let j = u32(id) * p.C + c;
      dst[j] = dst[j] + src[i * p.C + c];
    }
  }
}
