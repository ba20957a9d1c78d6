// kernels/workgroup_reduce.wgsl: the row reductions wg_sum / wg_sum2 / wg_sum4 / wg_max as shared-memory
// trees (log2(size) barriers), for adapters without the `subgroups` feature. shaders.ts prepends
// it (after common.wgsl) to the kernel files that reduce rows; subgroup_reduce.wgsl is the
// variant with subgroupAdd / subgroupMax and the same functions. Not for the argmax of reduce.wgsl.
// Lane: an entry point's invocation, declared as an entry-point parameter of kernels that reduce.
// Each function reduces over the first `size` invocations (a power of two <= 256), every
// invocation receiving the same result; call them from uniform control flow (they hold barriers).

/** Set by the backend for the subgroup variant; unused here. */
override SG_MIN: u32 = 0u;

struct Lane {
  @builtin(local_invocation_index) index: u32,
}

var<workgroup> k_red: array<f32, 256>;
var<workgroup> k_red2: array<vec2<f32>, 256>;
var<workgroup> k_red4: array<vec4<f32>, 256>;

fn wg_sum(v: f32, lane: Lane, size: u32) -> f32 {
  let lid = lane.index;
  k_red[lid] = v;
  workgroupBarrier();
  for (var s = size / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { k_red[lid] = k_red[lid] + k_red[lid + s]; }
    workgroupBarrier();
  }
  let r = k_red[0];
  workgroupBarrier();
  return r;
}

/** Two sums at once (one tree instead of two). */
fn wg_sum2(v: vec2<f32>, lane: Lane, size: u32) -> vec2<f32> {
  let lid = lane.index;
  k_red2[lid] = v;
  workgroupBarrier();
  for (var s = size / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { k_red2[lid] = k_red2[lid] + k_red2[lid + s]; }
    workgroupBarrier();
  }
  let r = k_red2[0];
  workgroupBarrier();
  return r;
}

/** Four sums at once. */
fn wg_sum4(v: vec4<f32>, lane: Lane, size: u32) -> vec4<f32> {
  let lid = lane.index;
  k_red4[lid] = v;
  workgroupBarrier();
  for (var s = size / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { k_red4[lid] = k_red4[lid] + k_red4[lid + s]; }
    workgroupBarrier();
  }
  let r = k_red4[0];
  workgroupBarrier();
  return r;
}

/** The maximum; NaN wins (as in the float64 reference). */
fn wg_max(v: f32, lane: Lane, size: u32) -> f32 {
  let lid = lane.index;
  k_red[lid] = v;
  workgroupBarrier();
  for (var s = size / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { k_red[lid] = k_max(k_red[lid], k_red[lid + s]); }
    workgroupBarrier();
  }
  let r = k_red[0];
  workgroupBarrier();
  return r;
}
