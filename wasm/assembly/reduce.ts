// Reductions: sum and max over the middle axis of x viewed as [outer, len, inner], and
// sum_squares (a global grad-norm term). Sums accumulate in f64 (f64x2 lanes), so long
// reductions (bias grads over B·T rows, norms over millions of params) keep f32 accuracy.
// Reference: tests/reference.ts sum, max, sumSquares; semantics: src/backend/kernels.ts.
import { at } from "./common";

@inline function lo64(v: v128): v128 { return f64x2.promote_low_f32x4(v); }
@inline function hi64(v: v128): v128 { return f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1)); }
@inline function hsum64(v: v128): f64 { return f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1); }

/** Σ x[i·stride], i < n, in f64 (stride 1 runs on f64x2 lanes) */
@inline function sumRow(x: usize, n: i32): f64 {
  let a0 = f64x2.splat(0), a1 = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const v = v128.load(at(x, i));
    a0 = f64x2.add(a0, lo64(v));
    a1 = f64x2.add(a1, hi64(v));
  }
  let s = hsum64(f64x2.add(a0, a1));
  for (; i < n; i++) s += <f64>load<f32>(at(x, i));
  return s;
}

export function sum_f32(x: usize, out: usize, outer: i32, len: i32, inner: i32): void {
  if (inner == 1) {
    for (let o = 0; o < outer; o++) store<f32>(at(out, o), <f32>sumRow(at(x, o * len), len));
    return;
  }
  const rowStride = <usize>inner << 2;
  for (let o = 0; o < outer; o++) {
    const xo = at(x, o * len * inner), oo = at(out, o * inner);
    // 8 columns at a time: 4 f64x2 accumulators walking down the len rows
    let i = 0;
    for (; i + 8 <= inner; i += 8) {
      let a0 = f64x2.splat(0), a1 = f64x2.splat(0), a2 = f64x2.splat(0), a3 = f64x2.splat(0);
      let p = at(xo, i);
      for (let l = 0; l < len; l++) {
        const v = v128.load(p), w = v128.load(p, 16);
        a0 = f64x2.add(a0, lo64(v));
        a1 = f64x2.add(a1, hi64(v));
        a2 = f64x2.add(a2, lo64(w));
        a3 = f64x2.add(a3, hi64(w));
        p += rowStride;
      }
      v128.store64_lane(at(oo, i), f32x4.demote_f64x2_zero(a0), 0);
      v128.store64_lane(at(oo, i + 2), f32x4.demote_f64x2_zero(a1), 0);
      v128.store64_lane(at(oo, i + 4), f32x4.demote_f64x2_zero(a2), 0);
      v128.store64_lane(at(oo, i + 6), f32x4.demote_f64x2_zero(a3), 0);
    }
    for (; i < inner; i++) {
      let s: f64 = 0;
      let p = at(xo, i);
      for (let l = 0; l < len; l++) {
        s += <f64>load<f32>(p);
        p += rowStride;
      }
      store<f32>(at(oo, i), <f32>s);
    }
  }
}

export function max_f32(x: usize, out: usize, idx: usize, outer: i32, len: i32, inner: i32): void {
  for (let o = 0; o < outer; o++) {
    const xo = at(x, o * len * inner), oo = at(out, o * inner), io = at(idx, o * inner);
    memory.copy(oo, xo, <usize>inner << 2); // l = 0
    memory.fill(io, 0, <usize>inner << 2); // 0.0f is all-zero bits
    for (let l = 1; l < len; l++) {
      const xl = at(xo, l * inner);
      for (let i = 0; i < inner; i++) {
        const v = load<f32>(at(xl, i)), best = load<f32>(at(oo, i));
        // first argmax; a NaN wins (max propagates NaN, as in PyTorch)
        if (v > best || (v != v && best == best)) {
          store<f32>(at(oo, i), v);
          store<f32>(at(io, i), <f32>l);
        }
      }
    }
  }
}

export function sum_squares_f32(x: usize, out: usize, n: i32, accumulate: i32): void {
  let a0 = f64x2.splat(0), a1 = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const v = v128.load(at(x, i));
    const l = lo64(v), h = hi64(v);
    a0 = f64x2.add(a0, f64x2.mul(l, l));
    a1 = f64x2.add(a1, f64x2.mul(h, h));
  }
  let s = hsum64(f64x2.add(a0, a1));
  for (; i < n; i++) {
    const v = <f64>load<f32>(at(x, i));
    s += v * v;
  }
  if (accumulate) s += <f64>load<f32>(out);
  store<f32>(out, <f32>s);
}
