// kernels/subgroup_reduce.wgsl: the row reductions wg_sum / wg_sum2 / wg_sum4 / wg_max with subgroup
// operations, for adapters with the `subgroups` feature (shaders.ts puts `enable subgroups;` first).
// Same functions and Lane as workgroup_reduce.wgsl (the fallback). A subgroup reduces in registers;
// when one subgroup covers the whole workgroup (size <= SG_MIN) that is all (no barrier); else each subgroup's first
// invocation leaves its partial in shared memory and every subgroup reduces the `size` slots (0 in
// the others' places) again: 2 barriers instead of log2(size) + 1, and no assumption about which
// invocations share a subgroup. The max runs on order-preserving u32 keys (exact, NaN on top).

/** The adapter's smallest subgroup size (0 if unknown), set by the backend: a workgroup of at most
 *  that many invocations is one subgroup. (A uniform condition: lane.sg_size is not, to WGSL.) */
override SG_MIN: u32 = 0u;

struct Lane {
  @builtin(local_invocation_index) index: u32,
  @builtin(subgroup_invocation_id) sg_id: u32,
  @builtin(subgroup_size) sg_size: u32,
}

var<workgroup> k_red: array<f32, 256>;
var<workgroup> k_red2: array<vec2<f32>, 256>;
var<workgroup> k_red4: array<vec4<f32>, 256>;
var<workgroup> k_redu: array<u32, 256>;

fn wg_sum(v: f32, lane: Lane, size: u32) -> f32 {
  let s = subgroupAdd(v);
  if (size <= SG_MIN) { return s; }
  k_red[lane.index] = select(0.0, s, lane.sg_id == 0u);
  workgroupBarrier();
  var t = 0.0;
  for (var i = lane.sg_id; i < size; i += lane.sg_size) { t += k_red[i]; }
  let r = subgroupAdd(t);
  workgroupBarrier();
  return r;
}

/** Two sums at once. */
fn wg_sum2(v: vec2<f32>, lane: Lane, size: u32) -> vec2<f32> {
  let s = subgroupAdd(v);
  if (size <= SG_MIN) { return s; }
  k_red2[lane.index] = select(vec2<f32>(0.0), s, lane.sg_id == 0u);
  workgroupBarrier();
  var t = vec2<f32>(0.0);
  for (var i = lane.sg_id; i < size; i += lane.sg_size) { t += k_red2[i]; }
  let r = subgroupAdd(t);
  workgroupBarrier();
  return r;
}

/** Four sums at once. */
fn wg_sum4(v: vec4<f32>, lane: Lane, size: u32) -> vec4<f32> {
  let s = subgroupAdd(v);
  if (size <= SG_MIN) { return s; }
  k_red4[lane.index] = select(vec4<f32>(0.0), s, lane.sg_id == 0u);
  workgroupBarrier();
  var t = vec4<f32>(0.0);
  for (var i = lane.sg_id; i < size; i += lane.sg_size) { t += k_red4[i]; }
  let r = subgroupAdd(t);
  workgroupBarrier();
  return r;
}

/** v's bits mapped so that u32 order is float order; every NaN maps to the top key. */
fn k_key(v: f32) -> u32 {
  let b = bitcast<u32>(v);
  if (k_isnan(v)) { return 0xffffffffu; }
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn k_unkey(key: u32) -> f32 {
  return bitcast<f32>(select(~key, key & 0x7fffffffu, (key & 0x80000000u) != 0u));
}

/** The maximum; NaN wins (as in the float64 reference). */
fn wg_max(v: f32, lane: Lane, size: u32) -> f32 {
  let s = subgroupMax(k_key(v));
  if (size <= SG_MIN) { return k_unkey(s); }
  k_redu[lane.index] = select(0u, s, lane.sg_id == 0u); // key 0: below every float
  workgroupBarrier();
  var t = 0u;
  for (var i = lane.sg_id; i < size; i += lane.sg_size) { let o = k_redu[i]; t = select(t, o, o > t); }
  let r = subgroupMax(t);
  workgroupBarrier();
  return k_unkey(r);
}
