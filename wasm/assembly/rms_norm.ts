// rms_norm and rms_norm_backward over rows of [rows, C] (Llama RMSNorm).
// Forward: rstd = 1/sqrt(Σx²/C + eps), out = x·rstd·w, writes rstd[r]. Backward: xhat = x·rstd,
// g = dout·w, dx = rstd·(g − xhat·mean(g·xhat)); dweight = Σ_r dout·xhat (zeroed, then summed).
// Reference: tests/reference.ts rmsNorm, rmsNormBackward.
import { at, hsum, zero } from "./common";

export function rms_norm_f32(x: usize, weight: usize, out: usize, rstd: usize, rows: i32, C: i32, eps: f64): void {
  for (let r = 0; r < rows; r++) {
    const xr = at(x, r * C), yr = at(out, r * C);
    let vs = f32x4.splat(0);
    let j = 0;
    for (; j + 4 <= C; j += 4) {
      const v = v128.load(at(xr, j));
      vs = f32x4.add(vs, f32x4.mul(v, v));
    }
    let s = hsum(vs);
    for (; j < C; j++) {
      const v = load<f32>(at(xr, j));
      s += v * v;
    }
    const rs = <f32>(1 / Math.sqrt(<f64>s / <f64>C + eps));
    store<f32>(at(rstd, r), rs);
    const vrs = f32x4.splat(rs);
    j = 0;
    for (; j + 4 <= C; j += 4) {
      v128.store(at(yr, j), f32x4.mul(f32x4.mul(v128.load(at(xr, j)), vrs), v128.load(at(weight, j))));
    }
    for (; j < C; j++) store<f32>(at(yr, j), load<f32>(at(xr, j)) * rs * load<f32>(at(weight, j)));
  }
}

export function rms_norm_backward_f32(
  dout: usize, x: usize, weight: usize, rstd: usize, dx: usize, dweight: usize, rows: i32, C: i32,
): void {
  zero(dweight, C);
  const invC: f32 = 1 / <f32>C;
  for (let r = 0; r < rows; r++) {
    const gr = at(dout, r * C), xr = at(x, r * C), dr = at(dx, r * C);
    const rs = load<f32>(at(rstd, r));
    const vrs = f32x4.splat(rs);
    let vgx = f32x4.splat(0);
    let j = 0;
    for (; j + 4 <= C; j += 4) {
      const xh = f32x4.mul(v128.load(at(xr, j)), vrs);
      vgx = f32x4.add(vgx, f32x4.mul(f32x4.mul(v128.load(at(gr, j)), v128.load(at(weight, j))), xh));
    }
    let sgx = hsum(vgx);
    for (; j < C; j++) sgx += load<f32>(at(gr, j)) * load<f32>(at(weight, j)) * load<f32>(at(xr, j)) * rs;
    const mgx = sgx * invC;
    const vmgx = f32x4.splat(mgx);
    j = 0;
    for (; j + 4 <= C; j += 4) {
      const xh = f32x4.mul(v128.load(at(xr, j)), vrs);
      const go = v128.load(at(gr, j));
      const g = f32x4.mul(go, v128.load(at(weight, j)));
      v128.store(at(dr, j), f32x4.mul(vrs, f32x4.sub(g, f32x4.mul(xh, vmgx))));
      v128.store(at(dweight, j), f32x4.add(v128.load(at(dweight, j)), f32x4.mul(go, xh)));
    }
    for (; j < C; j++) {
      const xh = load<f32>(at(xr, j)) * rs;
      const go = load<f32>(at(gr, j));
      store<f32>(at(dr, j), rs * (go * load<f32>(at(weight, j)) - xh * mgx));
      store<f32>(at(dweight, j), load<f32>(at(dweight, j)) + go * xh);
    }
  }
}
