// attention and attention_backward: fused scaled-dot-product attention with grouped-query heads
// and a causal offset (query t sits at absolute position t + S − T), one query row at a time.
// WASM ABI note: both exports take one extra trailing argument after the kernel-list params,
// `scratch`, a backend-owned block of at least S floats for the row's scores (kernels allocate
// nothing). Forward: s = scale·q·kᵀ into scratch, max, vector exp, out = Σ p·v / Σ p, lse = m + log Σ.
// Backward recomputes p = exp(s − lse) per row (FlashAttention-2 style); dk, dv are zeroed first and
// accumulated over the query rows and over the heads sharing a kv head. Reference: tests/reference.ts.
import { at, axpy, dot, hsum, sexpFast, vexpFast, zero } from "./common";

export function attention_f32(
  q: usize, k: usize, v: usize, out: usize, lse: usize,
  B: i32, T: i32, S: i32, H: i32, Hkv: i32, D: i32, scale: f64, causal: i32, scratch: usize,
): void {
  const group = H / Hkv;
  const sc = <f32>scale;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = h / group;
      for (let t = 0; t < T; t++) {
        const qr = at(q, ((b * T + t) * H + h) * D), orow = at(out, ((b * T + t) * H + h) * D);
        const jmax = causal ? min(S, t + S - T + 1) : S; // keys [0, jmax) are visible
        zero(orow, D);
        if (jmax <= 0) {
          store<f32>(at(lse, (b * H + h) * T + t), -Infinity);
          continue;
        }
        // scores and their max
        let m: f32 = -Infinity;
        for (let j = 0; j < jmax; j++) {
          const s = sc * dot(qr, at(k, ((b * S + j) * Hkv + g) * D), D);
          store<f32>(at(scratch, j), s);
          m = max(m, s);
        }
        // p = exp(s − m) in place, Σ p
        const vm = f32x4.splat(m);
        let vs = f32x4.splat(0);
        let j = 0;
        for (; j + 4 <= jmax; j += 4) {
          const e = vexpFast(f32x4.sub(v128.load(at(scratch, j)), vm));
          v128.store(at(scratch, j), e);
          vs = f32x4.add(vs, e);
        }
        let sum = hsum(vs);
        for (; j < jmax; j++) {
          const e = sexpFast(load<f32>(at(scratch, j)) - m);
          store<f32>(at(scratch, j), e);
          sum += e;
        }
        // out = Σ p_j·v_j / Σ p
        const inv: f32 = 1 / sum;
        for (j = 0; j < jmax; j++) axpy(orow, load<f32>(at(scratch, j)) * inv, at(v, ((b * S + j) * Hkv + g) * D), D);
        store<f32>(at(lse, (b * H + h) * T + t), <f32>(<f64>m + Math.log(<f64>sum)));
      }
    }
  }
}

export function attention_backward_f32(
  dout: usize, q: usize, k: usize, v: usize, out: usize, lse: usize, dq: usize, dk: usize, dv: usize,
  B: i32, T: i32, S: i32, H: i32, Hkv: i32, D: i32, scale: f64, causal: i32, scratch: usize,
): void {
  const group = H / Hkv;
  const sc = <f32>scale;
  zero(dk, B * S * Hkv * D);
  zero(dv, B * S * Hkv * D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = h / group;
      for (let t = 0; t < T; t++) {
        const row = ((b * T + t) * H + h) * D;
        const qr = at(q, row), gr = at(dout, row), dqr = at(dq, row);
        const jmax = causal ? min(S, t + S - T + 1) : S;
        zero(dqr, D);
        if (jmax <= 0) continue;
        const l = load<f32>(at(lse, (b * H + h) * T + t));
        const delta = dot(gr, at(out, row), D);
        // p = exp(scale·q·k − lse)
        for (let j = 0; j < jmax; j++) {
          store<f32>(at(scratch, j), sc * dot(qr, at(k, ((b * S + j) * Hkv + g) * D), D) - l);
        }
        let j = 0;
        for (; j + 4 <= jmax; j += 4) v128.store(at(scratch, j), vexpFast(v128.load(at(scratch, j))));
        for (; j < jmax; j++) store<f32>(at(scratch, j), sexpFast(load<f32>(at(scratch, j))));
        for (j = 0; j < jmax; j++) {
          const kv = ((b * S + j) * Hkv + g) * D;
          const p = load<f32>(at(scratch, j));
          const ds = p * (dot(gr, at(v, kv), D) - delta) * sc;
          axpy(at(dv, kv), p, gr, D);
          axpy(at(dk, kv), ds, qr, D);
          axpy(dqr, ds, at(k, kv), D);
        }
      }
    }
  }
}
