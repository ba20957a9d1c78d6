// Elementwise kernels: fill, add, sub, mul, div, affine, pow, exp, log, sqrt, tanh, sigmoid, relu,
// relu_backward, gelu, gelu_with_grad, silu, silu_backward, dropout, dropout_backward.
// Exports `<kernel>_f32(pointers in kernel-list order, then params)`; semantics in
// src/backend/kernels.ts, oracle in tests/reference.ts. Loops: f32x4 body, scalar tail that runs
// the same vector function on a splat (tail elements equal body elements bit for bit).
// Float params arrive as f64 (exact JS numbers) and are rounded to f32 once.
import { at, vexp, vsigmoid } from "./common";

// ---- fill ----

export function fill_f32(out: usize, n: i32, value: f64): void {
  const s = <f32>value;
  const v = f32x4.splat(s);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(at(out, i), v);
  for (; i < n; i++) store<f32>(at(out, i), s);
}

// ---- binary with modulo broadcasting: out[i] = a[i % na] op b[i % nb] ----

const ADD = 0, SUB = 1, MUL = 2, DIV = 3;

export function add_f32(a: usize, b: usize, out: usize, n: i32, na: i32, nb: i32): void {
  binary(ADD, a, b, out, n, na, nb);
}
export function sub_f32(a: usize, b: usize, out: usize, n: i32, na: i32, nb: i32): void {
  binary(SUB, a, b, out, n, na, nb);
}
export function mul_f32(a: usize, b: usize, out: usize, n: i32, na: i32, nb: i32): void {
  binary(MUL, a, b, out, n, na, nb);
}
export function div_f32(a: usize, b: usize, out: usize, n: i32, na: i32, nb: i32): void {
  binary(DIV, a, b, out, n, na, nb);
}

@inline function vop(op: i32, x: v128, y: v128): v128 {
  if (op == ADD) return f32x4.add(x, y);
  if (op == SUB) return f32x4.sub(x, y);
  if (op == MUL) return f32x4.mul(x, y);
  return f32x4.div(x, y);
}

@inline function sop(op: i32, x: f32, y: f32): f32 {
  if (op == ADD) return x + y;
  if (op == SUB) return x - y;
  if (op == MUL) return x * y;
  return x / y;
}

/** out[i] = a[i] op b[i], i < n (both contiguous) */
@inline function span(op: i32, a: usize, b: usize, out: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(at(out, i), vop(op, v128.load(at(a, i)), v128.load(at(b, i))));
  for (; i < n; i++) store<f32>(at(out, i), sop(op, load<f32>(at(a, i)), load<f32>(at(b, i))));
}

/** out[i] = a[i] op s (aIsVector) or s op a[i] */
@inline function spanScalar(op: i32, a: usize, s: f32, out: usize, n: i32, scalarFirst: bool): void {
  const vs = f32x4.splat(s);
  let i = 0;
  if (scalarFirst) {
    for (; i + 4 <= n; i += 4) v128.store(at(out, i), vop(op, vs, v128.load(at(a, i))));
    for (; i < n; i++) store<f32>(at(out, i), sop(op, s, load<f32>(at(a, i))));
  } else {
    for (; i + 4 <= n; i += 4) v128.store(at(out, i), vop(op, v128.load(at(a, i)), vs));
    for (; i < n; i++) store<f32>(at(out, i), sop(op, load<f32>(at(a, i)), s));
  }
}

@inline function binary(op: i32, a: usize, b: usize, out: usize, n: i32, na: i32, nb: i32): void {
  if (n <= 0) return;
  if (na == n && nb == n) { span(op, a, b, out, n); return; }
  if (nb == 1) {
    if (na == n) { spanScalar(op, a, load<f32>(b), out, n, false); return; }
  }
  if (na == 1) {
    if (nb == n) { spanScalar(op, b, load<f32>(a), out, n, true); return; }
  }
  if (na == n && nb > 1) {
    // b is a trailing block repeated n / nb times
    for (let base = 0; base < n; base += nb) span(op, at(a, base), b, at(out, base), nb);
    return;
  }
  if (nb == n && na > 1) {
    for (let base = 0; base < n; base += na) span(op, a, at(b, base), at(out, base), na);
    return;
  }
  // general modulo walk (both broadcast)
  let ia = 0, ib = 0;
  for (let i = 0; i < n; i++) {
    store<f32>(at(out, i), sop(op, load<f32>(at(a, ia)), load<f32>(at(b, ib))));
    if (++ia == na) ia = 0;
    if (++ib == nb) ib = 0;
  }
}

// ---- unary maps ----

const AFFINE = 0, EXP = 1, SQRT = 2, SIGMOID = 3, RELU = 4, GELU = 5, SILU = 6;
const GELU_K: f32 = 0.7978845608028654; // sqrt(2/pi)
const GELU_C: f32 = 0.044715;

@inline function vunary(op: i32, x: v128, alpha: v128, beta: v128): v128 {
  if (op == AFFINE) return f32x4.add(f32x4.mul(x, alpha), beta);
  if (op == EXP) return vexp(x);
  if (op == SQRT) return f32x4.sqrt(x);
  if (op == SIGMOID) return vsigmoid(x);
  if (op == RELU) return f32x4.pmax(x, f32x4.splat(0)); // x < 0 ? 0 : x (NaN stays NaN)
  if (op == GELU) return vgelu(x);
  return f32x4.mul(x, vsigmoid(x, false)); // SILU
}

/** gelu = 0.5·x·(1 + tanh u) = x·sigmoid(2u), u = k(x + c·x³): no cancellation for x ≪ 0 */
@inline function vgelu(x: v128): v128 {
  return f32x4.mul(x, vgeluGate(x, f32x4.mul(x, x)));
}

@inline function unary(op: i32, x: usize, out: usize, n: i32, a: f32, b: f32): void {
  const va = f32x4.splat(a), vb = f32x4.splat(b);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(at(out, i), vunary(op, v128.load(at(x, i)), va, vb));
  for (; i < n; i++) {
    store<f32>(at(out, i), f32x4.extract_lane(vunary(op, f32x4.splat(load<f32>(at(x, i))), va, vb), 0));
  }
}

export function affine_f32(x: usize, out: usize, n: i32, alpha: f64, beta: f64): void {
  unary(AFFINE, x, out, n, <f32>alpha, <f32>beta);
}
export function exp_f32(x: usize, out: usize, n: i32): void { unary(EXP, x, out, n, 0, 0); }
export function sqrt_f32(x: usize, out: usize, n: i32): void { unary(SQRT, x, out, n, 0, 0); }
export function sigmoid_f32(x: usize, out: usize, n: i32): void { unary(SIGMOID, x, out, n, 0, 0); }
export function relu_f32(x: usize, out: usize, n: i32): void { unary(RELU, x, out, n, 0, 0); }
export function gelu_f32(x: usize, out: usize, n: i32): void { unary(GELU, x, out, n, 0, 0); }
export function silu_f32(x: usize, out: usize, n: i32): void { unary(SILU, x, out, n, 0, 0); }

// gelu_with_grad: gelu(x) (bit for bit gelu_f32's) and gelu'(x) from the same s = sigmoid(2u),
// 1 − tanh² u = 4s(1 − s): gelu'(x) = s + 2x·s(1 − s)·k(1 + 3c·x²). The backward is then a mul.

/** s = sigmoid(2u), u = k(x + c·x³), from x and x² = x·x: gelu = x·s (vgelu, gelu_with_grad) */
@inline function vgeluGate(x: v128, x2: v128): v128 {
  const x3 = f32x4.mul(x2, x);
  const u = f32x4.mul(f32x4.splat(GELU_K), f32x4.add(x, f32x4.mul(f32x4.splat(GELU_C), x3)));
  return vsigmoid(f32x4.add(u, u), false);
}

/** gelu'(x) = s + 2x·s(1 − s)·k(1 + 3c·x²) = s + gelu·(1 − s)·(2k + 6kc·x²) */
@inline function vgeluGrad(x2: v128, s: v128, gelu: v128): v128 {
  const du2 = f32x4.add(f32x4.splat(2 * GELU_K), f32x4.mul(f32x4.splat(6 * GELU_K * GELU_C), x2));
  return f32x4.add(s, f32x4.mul(f32x4.mul(gelu, f32x4.sub(f32x4.splat(1), s)), du2));
}

export function gelu_with_grad_f32(x: usize, out: usize, dgelu: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const v = v128.load(at(x, i));
    const v2 = f32x4.mul(v, v);
    const s = vgeluGate(v, v2);
    const g = f32x4.mul(v, s);
    v128.store(at(out, i), g);
    v128.store(at(dgelu, i), vgeluGrad(v2, s, g));
  }
  for (; i < n; i++) {
    const v = f32x4.splat(load<f32>(at(x, i)));
    const v2 = f32x4.mul(v, v);
    const s = vgeluGate(v, v2);
    const g = f32x4.mul(v, s);
    store<f32>(at(out, i), f32x4.extract_lane(g, 0));
    store<f32>(at(dgelu, i), f32x4.extract_lane(vgeluGrad(v2, s, g), 0));
  }
}

// pow, log, tanh: scalar, through f64 (exactly rounded results); not on a training hot path.

export function pow_f32(x: usize, out: usize, n: i32, p: f64): void {
  for (let i = 0; i < n; i++) store<f32>(at(out, i), <f32>Math.pow(<f64>load<f32>(at(x, i)), p));
}
export function log_f32(x: usize, out: usize, n: i32): void {
  for (let i = 0; i < n; i++) store<f32>(at(out, i), <f32>Math.log(<f64>load<f32>(at(x, i))));
}
export function tanh_f32(x: usize, out: usize, n: i32): void {
  for (let i = 0; i < n; i++) store<f32>(at(out, i), <f32>Math.tanh(<f64>load<f32>(at(x, i))));
}

// ---- backward maps: dx = f'(x)·dout ----

const RELU_BW = 0, SILU_BW = 1;

@inline function vbackward(op: i32, x: v128, dout: v128): v128 {
  const one = f32x4.splat(1);
  if (op == RELU_BW) return v128.and(dout, f32x4.gt(x, f32x4.splat(0)));
  // SILU_BW: s·(1 + x·(1 − s))
  const s = vsigmoid(x, false);
  return f32x4.mul(dout, f32x4.mul(s, f32x4.add(one, f32x4.mul(x, f32x4.sub(one, s)))));
}

@inline function backward(op: i32, x: usize, dout: usize, dx: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(at(dx, i), vbackward(op, v128.load(at(x, i)), v128.load(at(dout, i))));
  for (; i < n; i++) {
    const r = vbackward(op, f32x4.splat(load<f32>(at(x, i))), f32x4.splat(load<f32>(at(dout, i))));
    store<f32>(at(dx, i), f32x4.extract_lane(r, 0));
  }
}

export function relu_backward_f32(x: usize, dout: usize, dx: usize, n: i32): void { backward(RELU_BW, x, dout, dx, n); }
export function silu_backward_f32(x: usize, dout: usize, dx: usize, n: i32): void { backward(SILU_BW, x, dout, dx, n); }

// ---- dropout: counter-based mask, u(i) = (pcg(i + pcg(seed)) >>> 8) / 2^24, keep iff u >= p ----

@inline function pcg(x: u32): u32 {
  const s = x * 747796405 + 2891336453;
  const w = ((s >>> ((s >>> 28) + 4)) ^ s) * 277803737;
  return (w >>> 22) ^ w;
}

@inline function dropoutMap(x: usize, out: usize, n: i32, p: f64, seed: u32): void {
  const scale = <f32>(1 / (1 - p));
  const base = pcg(seed);
  for (let i = 0; i < n; i++) {
    const u = <f64>(pcg(<u32>i + base) >>> 8) * (1.0 / 16777216.0); // exact; compared with p in f64
    store<f32>(at(out, i), u >= p ? load<f32>(at(x, i)) * scale : 0);
  }
}

export function dropout_f32(x: usize, out: usize, n: i32, p: f64, seed: u32): void {
  dropoutMap(x, out, n, p, seed);
}
export function dropout_backward_f32(dout: usize, dx: usize, n: i32, p: f64, seed: u32): void {
  dropoutMap(dout, dx, n, p, seed);
}
