// layer_norm and layer_norm_backward over rows of [rows, C] (llm.c layernorm_forward/backward).
// Forward writes out, mean[r], rstd[r]; two passes (mean, then Σ(x − mean)²) on f32x4 lanes.
// Backward: xhat = (x − mean)·rstd, g = dout·w, dx = rstd·(g − mean(g) − xhat·mean(g·xhat));
// dweight = Σ_r dout·xhat and dbias = Σ_r dout are written in full (zeroed, then summed).
import { at, hsum, zero } from "./common";

export function layer_norm_f32(
  x: usize, weight: usize, bias: usize, out: usize, mean: usize, rstd: usize, rows: i32, C: i32, eps: f64,
): void {
  const invC: f32 = 1 / <f32>C;
  for (let r = 0; r < rows; r++) {
    const xr = at(x, r * C), yr = at(out, r * C);
    let vs = f32x4.splat(0);
    let j = 0;
    for (; j + 4 <= C; j += 4) vs = f32x4.add(vs, v128.load(at(xr, j)));
    let s = hsum(vs);
    for (; j < C; j++) s += load<f32>(at(xr, j));
    const m = s * invC;
    const vm = f32x4.splat(m);
    let vv = f32x4.splat(0);
    j = 0;
    for (; j + 4 <= C; j += 4) {
      const d = f32x4.sub(v128.load(at(xr, j)), vm);
      vv = f32x4.add(vv, f32x4.mul(d, d));
    }
    let v = hsum(vv);
    for (; j < C; j++) {
      const d = load<f32>(at(xr, j)) - m;
      v += d * d;
    }
    const rs = <f32>(1 / Math.sqrt(<f64>(v * invC) + eps));
    store<f32>(at(mean, r), m);
    store<f32>(at(rstd, r), rs);
    const vrs = f32x4.splat(rs);
    j = 0;
    for (; j + 4 <= C; j += 4) {
      const nrm = f32x4.mul(f32x4.sub(v128.load(at(xr, j)), vm), vrs);
      v128.store(at(yr, j), f32x4.add(f32x4.mul(nrm, v128.load(at(weight, j))), v128.load(at(bias, j))));
    }
    for (; j < C; j++) {
      store<f32>(at(yr, j), (load<f32>(at(xr, j)) - m) * rs * load<f32>(at(weight, j)) + load<f32>(at(bias, j)));
    }
  }
}

export function layer_norm_backward_f32(
  dout: usize, x: usize, weight: usize, mean: usize, rstd: usize,
  dx: usize, dweight: usize, dbias: usize, rows: i32, C: i32,
): void {
  zero(dweight, C);
  zero(dbias, C);
  const invC: f32 = 1 / <f32>C;
  for (let r = 0; r < rows; r++) {
    const gr = at(dout, r * C), xr = at(x, r * C), dr = at(dx, r * C);
    const m = load<f32>(at(mean, r)), rs = load<f32>(at(rstd, r));
    const vm = f32x4.splat(m), vrs = f32x4.splat(rs);
    // pass 1: Σ g and Σ g·xhat
    let vg = f32x4.splat(0), vgx = f32x4.splat(0);
    let j = 0;
    for (; j + 4 <= C; j += 4) {
      const xh = f32x4.mul(f32x4.sub(v128.load(at(xr, j)), vm), vrs);
      const g = f32x4.mul(v128.load(at(gr, j)), v128.load(at(weight, j)));
      vg = f32x4.add(vg, g);
      vgx = f32x4.add(vgx, f32x4.mul(g, xh));
    }
    let sg = hsum(vg), sgx = hsum(vgx);
    for (; j < C; j++) {
      const xh = (load<f32>(at(xr, j)) - m) * rs;
      const g = load<f32>(at(gr, j)) * load<f32>(at(weight, j));
      sg += g;
      sgx += g * xh;
    }
    const mg = sg * invC, mgx = sgx * invC;
    const vmg = f32x4.splat(mg), vmgx = f32x4.splat(mgx);
    // pass 2: dx, and the dweight/dbias sums
    j = 0;
    for (; j + 4 <= C; j += 4) {
      const xh = f32x4.mul(f32x4.sub(v128.load(at(xr, j)), vm), vrs);
      const go = v128.load(at(gr, j));
      const g = f32x4.mul(go, v128.load(at(weight, j)));
      v128.store(at(dr, j), f32x4.mul(vrs, f32x4.sub(f32x4.sub(g, vmg), f32x4.mul(xh, vmgx))));
      v128.store(at(dweight, j), f32x4.add(v128.load(at(dweight, j)), f32x4.mul(go, xh)));
      v128.store(at(dbias, j), f32x4.add(v128.load(at(dbias, j)), go));
    }
    for (; j < C; j++) {
      const xh = (load<f32>(at(xr, j)) - m) * rs;
      const go = load<f32>(at(gr, j));
      const g = go * load<f32>(at(weight, j));
      store<f32>(at(dr, j), rs * (g - mg - xh * mgx));
      store<f32>(at(dweight, j), load<f32>(at(dweight, j)) + go * xh);
      store<f32>(at(dbias, j), load<f32>(at(dbias, j)) + go);
    }
  }
}
