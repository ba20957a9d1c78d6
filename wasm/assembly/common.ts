// Shared SIMD helpers for the kernel families (the AssemblyScript twin of kernels/common.wgsl):
// a vector exp, horizontal sum/max, pointer arithmetic. Not part of the wasm ABI: index.ts
// re-exports kernel families only. Everything is @inline and allocates nothing.
// exp: Cephes expf (range reduction by ln 2 split in two, degree-6 polynomial), ~1 ulp on [−86.6, 88.7].

/** Byte address of f32/i32 element i of the array at ptr. */
@inline export function at(ptr: usize, i: i32): usize {
  return ptr + (<usize>i << 2);
}

/**
 * exp(x) lane-wise in f32, ~1 ulp on [−86.6, 88.7]; NaN stays NaN. Outside that range the
 * argument is clamped: x < −86.6 gives ~2.4e−38 instead of 0 (or a denormal), x > 88.7 gives
 * ~3.4e38 instead of inf. Good inside sums and products (softmax sums, sigmoid, gelu); vexp()
 * below adds the exact 0 / inf edges for kernels that return exp values themselves.
 */
@inline export function vexpFast(x: v128): v128 {
  // clamp so that 2^(n−1) below is a normal float: n in [−125, 128]. pmax/pmin (one maxps/minps
  // each; f32x4.max/min cost ~5 instructions on JSC) keep a NaN in x: pmax(x, lo) = x < lo ? lo : x
  const c = f32x4.pmin(f32x4.pmax(x, f32x4.splat(-86.64)), f32x4.splat(88.72283));
  // round(c·log2 e) with the 1.5·2^23 magic add: t holds n in its low mantissa bits
  const t = f32x4.add(f32x4.mul(c, f32x4.splat(1.44269504088896341)), f32x4.splat(12582912.0));
  const n = f32x4.sub(t, f32x4.splat(12582912.0));
  let r = f32x4.sub(c, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  p = f32x4.add(f32x4.add(f32x4.mul(p, f32x4.mul(r, r)), r), f32x4.splat(1));
  // (2p)·2^(n−1) from the exponent bits: (bits(t) − 0x4B400000 + 126) << 23 (2^128 is not a float)
  const e = i32x4.shl(i32x4.sub(t, i32x4.splat(0x4B400000 - 126)), 23);
  return f32x4.mul(f32x4.add(p, p), e);
}

/** exp(x) lane-wise in f32: ~1 ulp; NaN stays NaN, x < −87.34 gives 0, x > 88.72 gives inf. */
@inline export function vexp(x: v128): v128 {
  const y = vexpFast(x);
  const big = v128.bitselect(f32x4.splat(Infinity), y, f32x4.gt(x, f32x4.splat(88.72284)));
  return v128.andnot(big, f32x4.lt(x, f32x4.splat(-87.33655))); // underflow (and −inf) to 0
}

/** Scalar exp through the same polynomial as vexp (so tails match vector bodies bit for bit). */
@inline export function sexp(x: f32): f32 {
  return f32x4.extract_lane(vexp(f32x4.splat(x)), 0);
}

/** Scalar twin of vexpFast. */
@inline export function sexpFast(x: f32): f32 {
  return f32x4.extract_lane(vexpFast(f32x4.splat(x)), 0);
}

/** 1 / (1 + exp(−x)) lane-wise; exact = false uses vexpFast (|error| < 3e−39 for x < −86). */
@inline export function vsigmoid(x: v128, exact: bool = true): v128 {
  const one = f32x4.splat(1);
  const e = exact ? vexp(f32x4.neg(x)) : vexpFast(f32x4.neg(x));
  return f32x4.div(one, f32x4.add(one, e));
}

/** p = exp(s − m) in place over s[0, n); returns Σ p (f32x4 lanes, then the scalar tail). */
export function expRow(s: usize, n: i32, m: f32): f32 {
  const vm = f32x4.splat(m);
  let vs = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const e = vexpFast(f32x4.sub(v128.load(at(s, j)), vm));
    v128.store(at(s, j), e);
    vs = f32x4.add(vs, e);
  }
  let sum = hsum(vs);
  for (; j < n; j++) {
    const e = sexpFast(load<f32>(at(s, j)) - m);
    store<f32>(at(s, j), e);
    sum += e;
  }
  return sum;
}

@inline export function hsum(v: v128): f32 {
  const a = f32x4.add(v, i32x4.shuffle(v, v, 2, 3, 0, 1));
  const b = f32x4.add(a, i32x4.shuffle(a, a, 1, 0, 3, 2));
  return f32x4.extract_lane(b, 0);
}

@inline export function hmax(v: v128): f32 {
  const a = f32x4.pmax(v, i32x4.shuffle(v, v, 2, 3, 0, 1));
  const b = f32x4.pmax(a, i32x4.shuffle(a, a, 1, 0, 3, 2));
  return f32x4.extract_lane(b, 0);
}

/** Σ a[i]·b[i], i < n, f32x4 lanes plus a scalar tail. */
@inline export function dot(a: usize, b: usize, n: i32): f32 {
  let acc0 = f32x4.splat(0);
  let acc1 = f32x4.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const o = <usize>i << 2;
    acc0 = f32x4.add(acc0, f32x4.mul(v128.load(a + o), v128.load(b + o)));
    acc1 = f32x4.add(acc1, f32x4.mul(v128.load(a + o, 16), v128.load(b + o, 16)));
  }
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    acc0 = f32x4.add(acc0, f32x4.mul(v128.load(a + o), v128.load(b + o)));
  }
  let s = hsum(f32x4.add(acc0, acc1));
  for (; i < n; i++) s += load<f32>(at(a, i)) * load<f32>(at(b, i));
  return s;
}

/** y[i] += alpha·x[i], i < n. */
@inline export function axpy(y: usize, alpha: f32, x: usize, n: i32): void {
  const va = f32x4.splat(alpha);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, f32x4.add(v128.load(y + o), f32x4.mul(va, v128.load(x + o))));
  }
  for (; i < n; i++) store<f32>(at(y, i), load<f32>(at(y, i)) + alpha * load<f32>(at(x, i)));
}

/** y[i] = 0, i < n. */
@inline export function zero(y: usize, n: i32): void {
  memory.fill(y, 0, <usize>n << 2);
}
