// softmax and softmax_backward over the rows of a [rows, cols] matrix.
// Forward: max-subtracted, vector exp (common.ts vexp), one multiply by 1/Σ. Backward:
// dx = out·(dout − Σ dout·out). Reference: tests/reference.ts softmax, softmaxBackward.
import { at, dot, hmax, hsum, sexp, vexp } from "./common";

export function softmax_f32(x: usize, out: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) {
    const xr = at(x, r * cols), yr = at(out, r * cols);
    let vm = f32x4.splat(-Infinity);
    let j = 0;
    for (; j + 4 <= cols; j += 4) vm = f32x4.pmax(vm, v128.load(at(xr, j)));
    let m = hmax(vm);
    for (; j < cols; j++) m = max(m, load<f32>(at(xr, j)));
    const vmax = f32x4.splat(m);
    let vs = f32x4.splat(0);
    j = 0;
    for (; j + 4 <= cols; j += 4) {
      const e = vexp(f32x4.sub(v128.load(at(xr, j)), vmax));
      v128.store(at(yr, j), e);
      vs = f32x4.add(vs, e);
    }
    let s = hsum(vs);
    for (; j < cols; j++) {
      const e = sexp(load<f32>(at(xr, j)) - m);
      store<f32>(at(yr, j), e);
      s += e;
    }
    const inv: f32 = 1 / s;
    const vinv = f32x4.splat(inv);
    j = 0;
    for (; j + 4 <= cols; j += 4) v128.store(at(yr, j), f32x4.mul(v128.load(at(yr, j)), vinv));
    for (; j < cols; j++) store<f32>(at(yr, j), load<f32>(at(yr, j)) * inv);
  }
}

export function softmax_backward_f32(out: usize, dout: usize, dx: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) {
    const yr = at(out, r * cols), gr = at(dout, r * cols), dr = at(dx, r * cols);
    const d = dot(yr, gr, cols);
    const vd = f32x4.splat(d);
    let j = 0;
    for (; j + 4 <= cols; j += 4) {
      v128.store(at(dr, j), f32x4.mul(v128.load(at(yr, j)), f32x4.sub(v128.load(at(gr, j)), vd)));
    }
    for (; j < cols; j++) store<f32>(at(dr, j), load<f32>(at(yr, j)) * (load<f32>(at(gr, j)) - d));
  }
}
