// kernels/common.wgsl: helpers that shaders.ts prepends to every kernels/*.wgsl module.
// They avoid the exp/log/sqrt/tanh/pow/max builtins on purpose: elementwise.wgsl and reduce.wgsl
// have entry points named after those kernels (src/backend/kernels.ts), and a module-scope name
// shadows the builtin of the same name throughout its module.

const LOG2E: f32 = 1.4426950408889634;
const LN2: f32 = 0.6931471805599453;
const GELU_K: f32 = 0.7978845608028654; // sqrt(2 / pi)

/** The flat index of this invocation in a grid folded into x and y (launch.ts grid1d). */
fn flat_id(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>, size: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * size + lid.x;
}

/** NaN test on the bits: `v != v` compiles to an ordered compare (false for NaN) on some drivers. */
fn k_isnan(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

/** e^x = 2^k·e^r with k = round(x·log2 e) and r = x − k·ln 2 (Cody–Waite, exact k·C1): float32
 *  accurate over the whole range (exp2(x·log2 e) alone is off by 6e-6 near 88); 0 / inf outside. */
fn k_exp(x: f32) -> f32 {
  let xc = clamp(x, -150.0, 130.0);
  let k = round(xc * LOG2E);
  let r = (xc - k * 0.693359375) - k * -2.12194440e-4;
  return select(ldexp(exp2(r * LOG2E), i32(k)), x, k_isnan(x));
}

fn k_log(x: f32) -> f32 {
  return log2(x) * LN2;
}

/** sqrt(x) as x·inverseSqrt(x) with one Newton step; exact at 0 and +inf, NaN below 0. */
fn k_sqrt(x: f32) -> f32 {
  let r = inverseSqrt(x);
  var y = x * r;
  y = y + 0.5 * r * (x - y * y);
  return select(y, x, x == 0.0 || x > 3.4028234e38);
}

fn k_sigmoid(x: f32) -> f32 {
  return 1.0 / (1.0 + k_exp(-x));
}

/** tanh(x): a Taylor polynomial near 0 (no cancellation), (1 − e^−2|x|)/(1 + e^−2|x|) elsewhere. */
fn k_tanh(x: f32) -> f32 {
  let a = abs(x);
  if (a < 0.0625) {
    let x2 = x * x;
    return x * (1.0 + x2 * (-0.33333333333 + x2 * (0.13333333333 + x2 * -0.05396825397)));
  }
  let e = k_exp(-2.0 * a);
  return sign(x) * (1.0 - e) / (1.0 + e);
}

/** A quiet NaN the compiler cannot fold (WGSL rejects NaN constants). */
fn k_nan(zero: u32) -> f32 {
  return bitcast<f32>(0x7fc00000u | zero);
}

/** −inf, not foldable (WGSL rejects infinite constants). */
fn k_neg_inf(zero: u32) -> f32 {
  return bitcast<f32>(0xff800000u | zero);
}

/** Larger of a and b, NaN winning. */
fn k_max(a: f32, b: f32) -> f32 {
  return select(a, b, b > a || (k_isnan(b) && !k_isnan(a)));
}
