// kernels/elementwise.wgsl: one thread per element, WG threads per workgroup, the grid folded into
// x and y (flat_id). Entry points = kernels of src/backend/kernels.ts "elementwise":
//   fill                         out@0                              Params{n, value}
//   add sub mul div              a@0 b@1 out@2                      Params{n, na, nb}: out[i] = a[i % na] ∘ b[i % nb]
//   affine                       x@0 out@1                          Params{n, alpha, beta}
//   pow                          x@0 out@1                          Params{n, p}
//   exp log sqrt tanh sigmoid relu gelu silu       x@0 out@1       Params{n}
//   relu_backward silu_backward  x@0 dout@1 dx@2                    Params{n}
//   gelu_with_grad               x@0 out@1 dgelu@2                  Params{n}
//   dropout                      x@0 out@1                          Params{n, p, seed, threshold, scale}
//   dropout_backward             dout@0 dx@1                        (same Params)
// exp/log/sqrt/tanh/pow shadow the builtins here: use the k_* helpers of common.wgsl.

override WG: u32 = 256;

struct N { n: u32 }
struct Fill { n: u32, value: f32 }
struct Binary { n: u32, na: u32, nb: u32 }
struct Affine { n: u32, alpha: f32, beta: f32 }
struct Pow { n: u32, p: f32 }
// threshold = ceil(p·2^24) and scale = 1/(1 − p), computed by the host in float64
struct Dropout { n: u32, p: f32, seed: u32, threshold: u32, scale: f32 }

// fill
@group(0) @binding(0) var<storage, read_write> fill_out: array<f32>;
@group(0) @binding(1) var<uniform> fill_p: Fill;

@compute @workgroup_size(WG)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat_id(wid, nwg, lid, WG);
  if (i < fill_p.n) { fill_out[i] = fill_p.value; }
}

// binary: a, b, out
@group(0) @binding(0) var<storage, read> bin_a: array<f32>;
@group(0) @binding(1) var<storage, read> bin_b: array<f32>;
@group(0) @binding(2) var<storage, read_write> bin_out: array<f32>;
@group(0) @binding(3) var<uniform> bin_p: Binary;

@compute @workgroup_size(WG)
fn add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat_id(wid, nwg, lid, WG);
  if (i < bin_p.n) { bin_out[i] = bin_a[i % bin_p.na] + bin_b[i % bin_p.nb]; }
}

@compute @workgroup_size(WG)
fn sub(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat_id(wid, nwg, lid, WG);
  if (i < bin_p.n) { bin_out[i] = bin_a[i % bin_p.na] - bin_b[i % bin_p.nb]; }
}

@compute @workgroup_size(WG)
fn mul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat_id(wid, nwg, lid, WG);
  if (i < bin_p.n) { bin_out[i] = bin_a[i % bin_p.na] * bin_b[i % bin_p.nb]; }
}

@compute @workgroup_size(WG)
fn div(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat_id(wid, nwg, lid, WG);
  if (i < bin_p.n) { bin_out[i] = bin_a[i % bin_p.na] / bin_b[i % bin_p.nb]; }
}

// unary: x, out
@group(0) @binding(0) var<storage, read> un_x: array<f32>;
@group(0) @binding(1) var<storage, read_write> un_out: array<f32>;
@group(0) @binding(2) var<uniform> un_p: N;
@group(0) @binding(2) var<uniform> affine_p: Affine;
@group(0) @binding(2) var<uniform> pow_p: Pow;

@compute @workgroup_size(WG)
fn affine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat_id(wid, nwg, lid, WG);
  if (i < affine_p.n) { un_out[i] = un_x[i] * affine_p.alpha + affine_p.beta; }
}

/** x^p for integer |p| <= 64 by repeated squaring (any sign of x); half-integers via sqrt; else exp2(p·log2 x). */
fn pow_of(x: f32, p: f32, zero: u32) -> f32 {
  if (p == 0.0) { return 1.0; }
  let ap = abs(p);
  if (ap <= 64.0 && floor(ap * 2.0) == ap * 2.0) {
    var e = u32(floor(ap));
    var base = x;
    var r = 1.0;
    loop {
      if (e == 0u) { break; }
      if ((e & 1u) == 1u) { r = r * base; }
      base = base * base;
      e = e >> 1u;
    }
    if (floor(ap) != ap) { r = r * k_sqrt(x); } // half-integer: NaN for x < 0 through k_sqrt
    return select(r, 1.0 / r, p < 0.0);
  }
  if (x < 0.0) { return k_nan(zero); }
  return exp2(p * log2(x));
}

@compute @workgroup_size(WG)
fn pow(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat_id(wid, nwg, lid, WG);
  if (i < pow_p.n) { un_out[i] = pow_of(un_x[i], pow_p.p, min(pow_p.n, 0u)); }
}

@compute @workgroup_size(WG)
fn exp(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat_id(wid, nwg, lid, WG);
  if (i < un_p.n) { un_out[i] = k_exp(un_x[i]); }
}

@compute @workgroup_size(WG)
fn log(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat_id(wid, nwg, lid, WG);
  if (i < un_p.n) { un_out[i] = k_log(un_x[i]); }
}

@compute @workgroup_size(WG)
fn sqrt(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat_id(wid, nwg, lid, WG);
  if (i < un_p.n) { un_out[i] = k_sqrt(un_x[i]); }
}

@compute @workgroup_size(WG)
fn tanh(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat_id(wid, nwg, lid, WG);
  if (i < un_p.n) { un_out[i] = k_tanh(un_x[i]); }
}

@compute @workgroup_size(WG)
fn sigmoid(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat_id(wid, nwg, lid, WG);
  if (i < un_p.n) { un_out[i] = k_sigmoid(un_x[i]); }
}

@compute @workgroup_size(WG)
fn relu(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat_id(wid, nwg, lid, WG);
  if (i < un_p.n) { let v = un_x[i]; un_out[i] = select(0.0, v, v > 0.0 || k_isnan(v)); }
}

/** 0.5·(1 + tanh(y)) = sigmoid(2y): no cancellation for negative y. */
fn gelu_gate(x: f32) -> f32 {
  return k_sigmoid(2.0 * GELU_K * (x + 0.044715 * x * x * x));
}

@compute @workgroup_size(WG)
fn gelu(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat_id(wid, nwg, lid, WG);
  if (i < un_p.n) { let v = un_x[i]; un_out[i] = v * gelu_gate(v); }
}

@compute @workgroup_size(WG)
fn silu(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat_id(wid, nwg, lid, WG);
  if (i < un_p.n) { let v = un_x[i]; un_out[i] = v * k_sigmoid(v); }
}

// backward of unary: x, dout, dx
@group(0) @binding(0) var<storage, read> bw_x: array<f32>;
@group(0) @binding(1) var<storage, read> bw_dout: array<f32>;
@group(0) @binding(2) var<storage, read_write> bw_dx: array<f32>;
@group(0) @binding(3) var<uniform> bw_p: N;

@compute @workgroup_size(WG)
fn relu_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat_id(wid, nwg, lid, WG);
  if (i < bw_p.n) { bw_dx[i] = select(0.0, bw_dout[i], bw_x[i] > 0.0); }
}

// gelu_with_grad: x, out, dgelu (gelu and its derivative, which the backward multiplies by dout)
@group(0) @binding(0) var<storage, read> gg_x: array<f32>;
@group(0) @binding(1) var<storage, read_write> gg_out: array<f32>;
@group(0) @binding(2) var<storage, read_write> gg_dgelu: array<f32>;
@group(0) @binding(3) var<uniform> gg_p: N;

@compute @workgroup_size(WG)
fn gelu_with_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat_id(wid, nwg, lid, WG);
  if (i < gg_p.n) {
    let v = gg_x[i];
    let s = gelu_gate(v); // 0.5·(1 + t), and 0.5·(1 − t²) = 2·s·(1 − s)
    gg_out[i] = v * s;
    gg_dgelu[i] = s + 2.0 * v * s * (1.0 - s) * GELU_K * (1.0 + 3.0 * 0.044715 * v * v);
  }
}

@compute @workgroup_size(WG)
fn silu_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat_id(wid, nwg, lid, WG);
  if (i < bw_p.n) {
    let v = bw_x[i];
    let s = k_sigmoid(v);
    bw_dx[i] = bw_dout[i] * s * (1.0 + v * (1.0 - s));
  }
}

// dropout: x (or dout), out (or dx)
@group(0) @binding(0) var<storage, read> drop_x: array<f32>;
@group(0) @binding(1) var<storage, read_write> drop_out: array<f32>;
@group(0) @binding(2) var<uniform> drop_p: Dropout;

/** The 32-bit PCG hash (kernels.ts dropout), u32 arithmetic wrapping. */
fn pcg(x: u32) -> u32 {
  let s = x * 747796405u + 2891336453u;
  let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}

fn dropout_apply(i: u32) {
  let keep = (pcg(i + pcg(drop_p.seed)) >> 8u) >= drop_p.threshold;
  drop_out[i] = select(0.0, drop_x[i] * drop_p.scale, keep);
}

@compute @workgroup_size(WG)
fn dropout(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat_id(wid, nwg, lid, WG);
  if (i < drop_p.n) { dropout_apply(i); }
}

@compute @workgroup_size(WG)
fn dropout_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat_id(wid, nwg, lid, WG);
  if (i < drop_p.n) { dropout_apply(i); }
}
