// attention and attention_backward as small matrix products on the matmul register tile (tile.ts),
// for prefill and training shapes (T ≥ MR query rows); attention.ts calls these when its scratch
// holds a whole head (tiledScratchBytes), and keeps its row-at-a-time path for decoding and for
// heads too long for the scratch. Same semantics (src/backend/kernels.ts); sums run over keys (or
// query rows) in ascending order, as in attention.ts, with masked entries as exact zeros.
//
// Per batch element and kv head, the keys and values are packed once for every query head that
// shares them:  Kt [S8/8][D][8] (keys as columns: s = q·kᵀ), Vp [D8/8][S][8] (p·v), and for the
// backward Vt (dp = dout·vᵀ) and Kp (dq = ds·k). Query rows go in panels of MR: scores of a panel
// into P (one row of ldp floats per query row), softmax row by row, then out = P·V.
// The backward keeps P and dS of the whole head (T rows), so dk = dSᵀ·q and dv = Pᵀ·dout are
// products too, over key panels, with q and dout packed [D8/8][T][8].
// q and dq rows are qStride floats apart, k, v, dk, dv rows kvStride (strided views, attention.ts);
// out and dout rows H·D.
import { at, dot, expRow, sexpFast, vexpFast, zero } from "./common";
import { micro_6x8 } from "./matmul_micro";
import { MR, NR, tileMul, transpose4 } from "./tile";

@inline function roundUp(n: i32, m: i32): i32 {
  return (n + m - 1) / m * m;
}

/** Floats of P (or dS) per query row: keys padded to NR, plus NR so key panels of MR rows stay inside. */
@inline function rowFloats(S: i32): i32 {
  return roundUp(S, NR) + NR;
}

/**
 * Scratch bytes the tiled path needs (mirrored by tiledAttentionScratchBytes in
 * src/backend/wasm/parallel.ts): zeros and a tile (64 floats), the packed query panel(s), the
 * packed keys/values, and P (forward: one panel; backward: P and dS of all rows).
 */
export function tiledScratchBytes(backward: bool, T: i32, S: i32, D: i32): i32 {
  const S8 = roundUp(S, NR), D8 = roundUp(D, NR), ldp = rowFloats(S);
  const floats = backward
    ? 64 + 2 * MR * D + 2 * S8 * D + D8 * S + 2 * D8 * T + 2 * roundUp(T, MR) * ldp
    : 64 + MR * D + S8 * D + D8 * S + MR * ldp;
  return floats * 4 + 64;
}

// ---- packing ----

/** Kt: keys [0, S) as columns, strips of NR keys: Kt[s][d][i] = key (8s + i)[d], zero past S. */
function packKeysT(k: usize, stride: i32, S: i32, D: i32, dst: usize): void {
  const rowBytes = <usize>stride << 2;
  const D4 = D & ~3;
  for (let j0 = 0; j0 < S; j0 += NR) {
    const w = min(NR, S - j0);
    const src = at(k, j0 * stride);
    let d = 0;
    if (w == NR) {
      // 4 keys × 4 dims at a time, transposed in registers
      for (; d < D4; d += 4) {
        const s = src + (<usize>d << 2), o = dst + (<usize>d << 5);
        transpose4(s, rowBytes, o);
        transpose4(s + rowBytes * 4, rowBytes, o + 16);
      }
    }
    for (; d < D; d++) {
      const o = <usize>d << 2, row = dst + (<usize>d << 5);
      for (let i = 0; i < NR; i++) store<f32>(row + (<usize>i << 2), i < w ? load<f32>(src + <usize>i * rowBytes + o) : 0);
    }
    dst += <usize>D << 5;
  }
}

/** Rows [0, n) of x (row stride `stride` floats, D columns) as strips of NR columns: [D8/8][n][NR], zero past D (a last strip of ≤ 4 columns: [n][4]). */
function packRows(x: usize, stride: i32, n: i32, D: i32, dst: usize): void {
  const rowBytes = <usize>stride << 2;
  for (let d0 = 0; d0 < D; d0 += NR) {
    const w = min(NR, D - d0);
    let src = at(x, d0);
    if (w == NR) {
      for (let j = 0; j < n; j++) {
        v128.store(dst, v128.load(src));
        v128.store(dst, v128.load(src, 16), 16);
        dst += NR * 4; src += rowBytes;
      }
    } else {
      const width = w > 4 ? NR : 4; // a last strip of ≤ 4 columns is [n][4], for tileMul's 6×4 kernel
      for (let j = 0; j < n; j++) {
        for (let i = 0; i < width; i++) store<f32>(dst + (<usize>i << 2), i < w ? load<f32>(src + (<usize>i << 2)) : 0);
        dst += <usize>width << 2; src += rowBytes;
      }
    }
  }
}

/** h < MR rows of x (row stride `stride` floats) as one k-major panel [D][MR], zero rows past h. */
function packPanel(x: usize, stride: i32, h: i32, D: i32, dst: usize): void {
  const rowBytes = <usize>stride << 2;
  for (let d = 0; d < D; d++) {
    const o = <usize>d << 2;
    for (let r = 0; r < MR; r++) store<f32>(dst + (<usize>r << 2), r < h ? load<f32>(x + <usize>r * rowBytes + o) : 0);
    dst += MR * 4;
  }
}

/**
 * dst rows [0, MR) × keys [0, n) = A·Ktᵀ over the key strips: A(r, d) at a + r·rs + d·ks (a query
 * panel in place or packed). n ≤ S; whole strips are written (their padded keys too).
 */
function scorePanel(a: usize, rs: usize, ks: usize, Kt: usize, D: i32, n: i32, dst: usize, ldp: i32, zeros: usize): void {
  const strip = <usize>D * NR * 4;
  for (let j0 = 0; j0 < n; j0 += NR) {
    micro_6x8(a, rs, ks, Kt + <usize>(j0 / NR) * strip, dst + (<usize>j0 << 2), <usize>ldp << 2, D, zeros, 0);
  }
}

/**
 * C rows [0, h) × [0, D) (row stride ldc floats) (+)= A·Bp over k < kc: A(r, k) at a + r·rs + k·ks,
 * Bp packed [D8/8][rows][NR] (rows floats per strip, starting at k = k0).
 */
function productRows(
  a: usize, rs: usize, ks: usize, Bp: usize, rows: i32, k0: i32, kc: i32, c: usize, ldc: i32, h: i32, D: i32,
  accum: i32, zeros: usize, tile: usize,
): void {
  const strip = <usize>rows * NR * 4;
  for (let d0 = 0; d0 < D; d0 += NR) {
    const w = min(NR, D - d0);
    const width = w > 4 ? NR : 4; // packRows' strip widths
    const bs = Bp + <usize>(d0 / NR) * strip + (<usize>(k0 * width) << 2);
    tileMul(a, rs, ks, bs, at(c, d0), <usize>ldc << 2, kc, zeros, accum, h, w, tile);
  }
}

// ---- forward ----

/** attention_f32 for batch elements [0, B) (see attention.ts), when tiledScratchBytes fits. */
export function attentionTiled(
  q: usize, k: usize, v: usize, out: usize, lse: usize,
  B: i32, T: i32, S: i32, H: i32, Hkv: i32, D: i32, sc: f32, causal: i32, qStride: i32, kvStride: i32, scratch: usize,
): void {
  const group = H / Hkv;
  const oStride = H * D;
  const off = S - T; // query t sits at absolute position t + off
  const S8 = roundUp(S, NR), ldp = rowFloats(S);
  const zeros = scratch, inv = at(scratch, 8), tile = at(scratch, 16); // 8 zeros, MR × 1/Σp, MR×NR tile
  const Ap = at(scratch, 64), Kt = at(Ap, MR * D), Vp = at(Kt, S8 * D), P = at(Vp, roundUp(D, NR) * S);
  zero(zeros, NR);
  for (let b = 0; b < B; b++) {
    for (let g = 0; g < Hkv; g++) {
      const kvOff = b * S * kvStride + g * D;
      packKeysT(at(k, kvOff), kvStride, S, D, Kt);
      packRows(at(v, kvOff), kvStride, S, D, Vp);
      for (let h = g * group; h < (g + 1) * group; h++) {
        for (let t0 = 0; t0 < T; t0 += MR) {
          const hp = min(MR, T - t0);
          const row0 = ((b * T + t0) * H + h) * D; // out
          const qrow0 = (b * T + t0) * qStride + h * D;
          const jp = causal ? min(S, t0 + hp + off) : S; // keys [0, jp) are visible to some row of the panel
          if (jp <= 0) {
            for (let r = 0; r < hp; r++) {
              zero(at(out, row0 + r * oStride), D);
              store<f32>(at(lse, (b * H + h) * T + t0 + r), -Infinity);
            }
            continue;
          }
          // scores: the panel's query rows in place, or packed when fewer than MR are left
          let a = at(q, qrow0), rs = <usize>qStride << 2, ks: usize = 4;
          if (hp < MR) {
            packPanel(a, qStride, hp, D, Ap);
            a = Ap; rs = 4; ks = MR * 4;
          }
          scorePanel(a, rs, ks, Kt, D, jp, P, ldp, zeros);
          // softmax row by row; lse; P rows zero past each row's keys (up to jp)
          for (let r = 0; r < hp; r++) {
            const prow = at(P, r * ldp);
            const t = t0 + r;
            const jmax = causal ? min(S, t + off + 1) : S;
            const lrow = at(lse, (b * H + h) * T + t);
            if (jmax <= 0) {
              zero(prow, jp);
              store<f32>(lrow, -Infinity);
              continue;
            }
            const m = scaleMax(prow, jmax, sc);
            const sum = expRow(prow, jmax, m);
            zero(at(prow, jmax), jp - jmax);
            store<f32>(lrow, <f32>(<f64>m + Math.log(<f64>sum)));
            store<f32>(at(inv, r), 1 / sum);
          }
          // out rows = P·V over keys [0, jp), then × 1/Σp
          productRows(P, <usize>ldp << 2, 4, Vp, S, 0, jp, at(out, row0), oStride, hp, D, 0, zeros, tile);
          for (let r = 0; r < hp; r++) {
            const t = t0 + r;
            const jmax = causal ? min(S, t + off + 1) : S;
            if (jmax > 0) scaleRow(at(out, row0 + r * oStride), D, load<f32>(at(inv, r)));
            else zero(at(out, row0 + r * oStride), D);
          }
        }
      }
    }
  }
}

/** s[j] = scale·s[j] for j < n; returns the max. */
function scaleMax(s: usize, n: i32, sc: f32): f32 {
  const vsc = f32x4.splat(sc);
  let vm = f32x4.splat(-Infinity);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const x = f32x4.mul(v128.load(at(s, j)), vsc);
    v128.store(at(s, j), x);
    vm = f32x4.max(vm, x);
  }
  let m = max(max(f32x4.extract_lane(vm, 0), f32x4.extract_lane(vm, 1)), max(f32x4.extract_lane(vm, 2), f32x4.extract_lane(vm, 3)));
  for (; j < n; j++) {
    const x = load<f32>(at(s, j)) * sc;
    store<f32>(at(s, j), x);
    m = max(m, x);
  }
  return m;
}

/** x[0:n] *= c */
function scaleRow(x: usize, n: i32, c: f32): void {
  const vc = f32x4.splat(c);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(at(x, i), f32x4.mul(v128.load(at(x, i)), vc));
  for (; i < n; i++) store<f32>(at(x, i), load<f32>(at(x, i)) * c);
}

// ---- backward ----

/** attention_backward_f32 for batch elements [0, B) (see attention.ts), when tiledScratchBytes fits; dk, dv zeroed by the caller. */
export function attentionBackwardTiled(
  dout: usize, q: usize, k: usize, v: usize, out: usize, lse: usize, dq: usize, dk: usize, dv: usize,
  B: i32, T: i32, S: i32, H: i32, Hkv: i32, D: i32, sc: f32, causal: i32, qStride: i32, kvStride: i32, scratch: usize,
): void {
  const group = H / Hkv;
  const oStride = H * D;
  const off = S - T;
  const S8 = roundUp(S, NR), D8 = roundUp(D, NR), ldp = rowFloats(S);
  const zeros = scratch, tile = at(scratch, 16); // 8 zeros, MR×NR tile
  const Aq = at(scratch, 64), Ag = at(Aq, MR * D);
  const Kt = at(Ag, MR * D), Vt = at(Kt, S8 * D), Kp = at(Vt, S8 * D);
  const Qp = at(Kp, D8 * S), Gp = at(Qp, D8 * T);
  const P = at(Gp, D8 * T), dS = at(P, roundUp(T, MR) * ldp);
  zero(zeros, NR);
  const rsP = <usize>ldp << 2;
  for (let b = 0; b < B; b++) {
    for (let g = 0; g < Hkv; g++) {
      const kvOff = b * S * kvStride + g * D;
      packKeysT(at(k, kvOff), kvStride, S, D, Kt);
      packKeysT(at(v, kvOff), kvStride, S, D, Vt);
      packRows(at(k, kvOff), kvStride, S, D, Kp);
      for (let h = g * group; h < (g + 1) * group; h++) {
        const head0 = (b * T * H + h) * D; // dout/out row of t = 0
        const qhead0 = b * T * qStride + h * D; // q/dq row of t = 0
        const lhead = at(lse, (b * H + h) * T);
        // P = exp(scale·q·kᵀ − lse), dS = P·(dout·vᵀ − delta)·scale, dq = dS·k, panel by panel
        for (let t0 = 0; t0 < T; t0 += MR) {
          const hp = min(MR, T - t0);
          const row0 = head0 + t0 * oStride, qrow0 = qhead0 + t0 * qStride;
          const jp = causal ? min(S, t0 + hp + off) : S;
          if (jp <= 0) {
            for (let r = 0; r < hp; r++) {
              zero(at(dq, qrow0 + r * qStride), D);
              zero(at(P, (t0 + r) * ldp), S);
              zero(at(dS, (t0 + r) * ldp), S);
            }
            continue;
          }
          let aq = at(q, qrow0), ag = at(dout, row0), rq = <usize>qStride << 2, rg = <usize>oStride << 2, ks: usize = 4;
          if (hp < MR) {
            packPanel(aq, qStride, hp, D, Aq);
            packPanel(ag, oStride, hp, D, Ag);
            aq = Aq; ag = Ag; rq = 4; rg = 4; ks = MR * 4;
          }
          const Pp = at(P, t0 * ldp), dSp = at(dS, t0 * ldp);
          scorePanel(aq, rq, ks, Kt, D, jp, Pp, ldp, zeros);
          scorePanel(ag, rg, ks, Vt, D, jp, dSp, ldp, zeros);
          for (let r = 0; r < hp; r++) {
            const t = t0 + r;
            const prow = at(Pp, r * ldp), dsrow = at(dSp, r * ldp);
            const jmax = causal ? min(S, t + off + 1) : S;
            if (jmax > 0) {
              const rowOff = row0 + r * oStride;
              const delta = dot(at(dout, rowOff), at(out, rowOff), D);
              softmaxGradRow(prow, dsrow, jmax, sc, load<f32>(at(lhead, t)), delta);
            }
            const j0 = max(jmax, 0);
            zero(at(prow, j0), S - j0);
            zero(at(dsrow, j0), S - j0);
          }
          productRows(dSp, rsP, 4, Kp, S, 0, jp, at(dq, qrow0), qStride, hp, D, 0, zeros, tile);
          for (let r = 0; r < hp; r++) {
            if ((causal ? min(S, t0 + r + off + 1) : S) <= 0) zero(at(dq, qrow0 + r * qStride), D);
          }
        }
        // dk[j] += Σ_t dS[t, j]·q[t], dv[j] += Σ_t P[t, j]·dout[t] over key panels (rows t that see j)
        packRows(at(q, qhead0), qStride, T, D, Qp);
        packRows(at(dout, head0), oStride, T, D, Gp);
        for (let j0 = 0; j0 < S; j0 += MR) {
          const hk = min(MR, S - j0);
          const tFirst = causal ? max(0, j0 - off) : 0;
          if (tFirst >= T) break;
          const kc = T - tFirst;
          const o = kvOff + j0 * kvStride;
          const pa = at(P, tFirst * ldp + j0), sa = at(dS, tFirst * ldp + j0);
          productRows(sa, 4, rsP, Qp, T, tFirst, kc, at(dk, o), kvStride, hk, D, 1, zeros, tile);
          productRows(pa, 4, rsP, Gp, T, tFirst, kc, at(dv, o), kvStride, hk, D, 1, zeros, tile);
        }
      }
    }
  }
}

/** p = exp(scale·s − l) in place; ds = p·(dp − delta)·scale in place over [0, n). */
function softmaxGradRow(p: usize, ds: usize, n: i32, sc: f32, l: f32, delta: f32): void {
  const vsc = f32x4.splat(sc), vl = f32x4.splat(l), vd = f32x4.splat(delta);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const e = vexpFast(f32x4.sub(f32x4.mul(v128.load(at(p, j)), vsc), vl));
    v128.store(at(p, j), e);
    v128.store(at(ds, j), f32x4.mul(f32x4.mul(e, f32x4.sub(v128.load(at(ds, j)), vd)), vsc));
  }
  for (; j < n; j++) {
    const e = sexpFast(load<f32>(at(p, j)) * sc - l);
    store<f32>(at(p, j), e);
    store<f32>(at(ds, j), e * (load<f32>(at(ds, j)) - delta) * sc);
  }
}
