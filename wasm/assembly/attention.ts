// attention and attention_backward: fused scaled-dot-product attention with grouped-query heads
// and a causal offset (query t sits at absolute position t + S − T), one query row at a time.
// WASM ABI note: both exports take two extra trailing arguments after the kernel-list params,
// `scratch`, a backend-owned block (kernels allocate nothing), and its size in bytes. When it holds
// attention_tiles.tiledScratchBytes and T ≥ MR, the call runs as small matrix products on the
// matmul register tile (attention_tiles.ts: prefill and training); otherwise row by row, as below,
// which needs 2·S floats for the forward and 2·min(T, BACKWARD_ROWS)·S floats for the backward.
// Forward per row: s = scale·q·kᵀ (4 keys per step) into scratch, p = exp(s − max), out = Σ p·v / Σ p
// (out accumulated in registers, 16 columns at a time), lse = max + log Σ p.
// Backward per row recomputes p = exp(s − lse) (FlashAttention-2 style), ds = p·(dout·vᵀ − delta)·scale,
// dq = ds·k; p and ds of a block of BACKWARD_ROWS rows stay in scratch, then dk += ds·q and
// dv += p·dout run key by key over the block (the dk/dv row in registers). dk and dv are zeroed
// first and summed over rows (ascending) and over the heads sharing a kv head. Reference: tests/reference.ts attention, attentionBackward.
// q, k, v (and dq, dk, dv) may be strided views (kernels.ts): rows qRow / kvRow floats apart, from
// qOff / kOff / vOff; out, lse and dout are packed. Only the view's elements of dq, dk, dv are written.
import { at, dot, expRow, sexpFast, vexpFast, zero } from "./common";
import { attentionBackwardTiled, attentionTiled, tiledScratchBytes } from "./attention_tiles";
import { MR } from "./tile";

export function attention_f32(
  q: usize, k: usize, v: usize, out: usize, lse: usize,
  B: i32, T: i32, S: i32, H: i32, Hkv: i32, D: i32, scale: f64, causal: i32,
  qRow: i32, kvRow: i32, qOff: i32, kOff: i32, vOff: i32, scratch: usize, scratchBytes: i32,
): void {
  const group = H / Hkv;
  const sc = <f32>scale;
  const qStride = qRow > 0 ? qRow : H * D; // floats between query rows t and t + 1
  const kvStride = kvRow > 0 ? kvRow : Hkv * D; // floats between keys j and j + 1
  q = at(q, qOff); k = at(k, kOff); v = at(v, vOff);
  if (T >= MR && D > 0 && tiledScratchBytes(false, T, S, D) <= scratchBytes) { // the tile needs k ≥ 1
    attentionTiled(q, k, v, out, lse, B, T, S, H, Hkv, D, sc, causal, qStride, kvStride, scratch);
    return;
  }
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kb = at(k, b * S * kvStride + h / group * D), vb = at(v, b * S * kvStride + h / group * D);
      for (let t = 0; t < T; t++) {
        const row = ((b * T + t) * H + h) * D; // out
        const qr = at(q, (b * T + t) * qStride + h * D);
        const jmax = causal ? min(S, t + S - T + 1) : S; // keys [0, jmax) are visible
        const lrow = at(lse, (b * H + h) * T + t);
        if (jmax <= 0) {
          zero(at(out, row), D);
          store<f32>(lrow, -Infinity);
          continue;
        }
        if (t + 1 < T) {
          // rows t and t + 1 together: each key row is loaded once for both (same sums per row)
          const row1 = row + H * D, jmax1 = causal ? min(S, t + S - T + 2) : S;
          const qr1 = at(qr, qStride);
          const s1 = at(scratch, S);
          scoresPair(qr, qr1, kb, kvStride, D, jmax & ~3, sc, 0, 0, scratch, s1);
          const m = max(pairMax0, scoresRange(qr, kb, kvStride, D, jmax & ~3, jmax, sc, 0, scratch));
          const m1 = max(pairMax1, scoresRange(qr1, kb, kvStride, D, jmax & ~3, jmax1, sc, 0, s1));
          const sum = expRow(scratch, jmax, m), sum1 = expRow(s1, jmax1, m1);
          weightedRowsPair(at(out, row), at(out, row1), scratch, s1, vb, kvStride, D, jmax, jmax1, 1 / sum, 1 / sum1);
          store<f32>(lrow, <f32>(<f64>m + Math.log(<f64>sum)));
          store<f32>(lrow + 4, <f32>(<f64>m1 + Math.log(<f64>sum1)));
          t++;
          continue;
        }
        const m = scores(qr, kb, kvStride, D, jmax, sc, 0, scratch);
        const sum = expRow(scratch, jmax, m);
        weightedRows(at(out, row), scratch, vb, kvStride, D, jmax, 1 / sum);
        store<f32>(lrow, <f32>(<f64>m + Math.log(<f64>sum)));
      }
    }
  }
}

/** Query rows per block of attention_backward: its scratch holds p and ds for them (2·rows·S floats). */
const BACKWARD_ROWS = 32; // mirrored by ATTENTION_BACKWARD_ROWS in src/backend/wasm/parallel.ts

export function attention_backward_f32(
  dout: usize, q: usize, k: usize, v: usize, out: usize, lse: usize, dq: usize, dk: usize, dv: usize,
  B: i32, T: i32, S: i32, H: i32, Hkv: i32, D: i32, scale: f64, causal: i32,
  qRow: i32, kvRow: i32, qOff: i32, kOff: i32, vOff: i32, scratch: usize, scratchBytes: i32,
): void {
  const group = H / Hkv;
  const sc = <f32>scale;
  const qStride = qRow > 0 ? qRow : H * D; // q and dq: floats between query rows t and t + 1
  const kvStride = kvRow > 0 ? kvRow : Hkv * D;
  q = at(q, qOff); dq = at(dq, qOff); k = at(k, kOff); dk = at(dk, kOff); v = at(v, vOff); dv = at(dv, vOff);
  zeroRows(dk, B * S, kvStride, Hkv * D);
  zeroRows(dv, B * S, kvStride, Hkv * D);
  if (T >= MR && D > 0 && tiledScratchBytes(true, T, S, D) <= scratchBytes) {
    attentionBackwardTiled(dout, q, k, v, out, lse, dq, dk, dv, B, T, S, H, Hkv, D, sc, causal, qStride, kvStride, scratch);
    return;
  }
  const oStride = H * D; // dout and out
  const rowsPerBlock = min(T, BACKWARD_ROWS);
  const pbase = scratch, dsbase = at(scratch, rowsPerBlock * S); // [rowsPerBlock][S] each
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const off = b * S * kvStride + h / group * D;
      const kb = at(k, off), vb = at(v, off), dkb = at(dk, off), dvb = at(dv, off);
      for (let t0 = 0; t0 < T; t0 += rowsPerBlock) {
        const t1 = min(T, t0 + rowsPerBlock);
        let jend = 0; // keys [0, jend) are visible to some row of the block
        for (let t = t0; t < t1; t++) {
          const row = ((b * T + t) * H + h) * D; // dout, out
          const qrow = (b * T + t) * qStride + h * D; // q, dq
          const qr = at(q, qrow), gr = at(dout, row);
          const jmax = causal ? min(S, t + S - T + 1) : S;
          if (jmax <= 0) {
            zero(at(dq, qrow), D);
            continue;
          }
          const pbuf = at(pbase, (t - t0) * S), dsbuf = at(dsbase, (t - t0) * S);
          const l = load<f32>(at(lse, (b * H + h) * T + t));
          const delta = dot(gr, at(out, row), D);
          if (t + 1 < t1) {
            // rows t and t + 1 together: each k and v row is loaded once for both (same sums per row)
            const row1 = row + oStride, jmax1 = causal ? min(S, t + S - T + 2) : S;
            const qr1 = at(qr, qStride), gr1 = at(dout, row1);
            const pbuf1 = pbuf + (<usize>S << 2), dsbuf1 = dsbuf + (<usize>S << 2);
            const l1 = load<f32>(at(lse, (b * H + h) * T + t + 1));
            const delta1 = dot(gr1, at(out, row1), D);
            const j4 = jmax & ~3;
            scoresPair(qr, qr1, kb, kvStride, D, j4, sc, l, l1, pbuf, pbuf1);
            scoresRange(qr, kb, kvStride, D, j4, jmax, sc, l, pbuf);
            scoresRange(qr1, kb, kvStride, D, j4, jmax1, sc, l1, pbuf1);
            scoresPair(gr, gr1, vb, kvStride, D, j4, 1, delta, delta1, dsbuf, dsbuf1);
            scoresRange(gr, vb, kvStride, D, j4, jmax, 1, delta, dsbuf);
            scoresRange(gr1, vb, kvStride, D, j4, jmax1, 1, delta1, dsbuf1);
            dsRow(pbuf, dsbuf, jmax, sc);
            dsRow(pbuf1, dsbuf1, jmax1, sc);
            jend = max(jend, jmax1);
            weightedRowsPair(at(dq, qrow), at(dq, qrow + qStride), dsbuf, dsbuf1, kb, kvStride, D, jmax, jmax1, 1, 1);
            t++;
            continue;
          }
          jend = max(jend, jmax);
          // p = exp(scale·q·k − lse); dp = dout·v; ds = p·(dp − delta)·scale
          scores(qr, kb, kvStride, D, jmax, sc, l, pbuf);
          scores(gr, vb, kvStride, D, jmax, 1, delta, dsbuf);
          dsRow(pbuf, dsbuf, jmax, sc);
          weightedRows(at(dq, qrow), dsbuf, kb, kvStride, D, jmax, 1);
        }
        // dv[j] += Σ_t p[t, j]·dout[t], dk[j] += Σ_t ds[t, j]·q[t] over the block's rows that see key j,
        // t ascending: the same f32 sums, in the same order, as adding row by row
        const rowBase = ((b * T + t0) * H + h) * D, qBase = (b * T + t0) * qStride + h * D;
        for (let j = 0; j < jend; j++) {
          const tFirst = causal ? max(t0, j - (S - T)) : t0; // first row of the block that sees key j
          const o = <usize>(j * kvStride) << 2;
          const first = tFirst - t0, count = t1 - tFirst;
          accumulateRows(dvb + o, at(pbase, first * S + j), S, at(dout, rowBase + first * oStride), oStride, D, count);
          accumulateRows(dkb + o, at(dsbase, first * S + j), S, at(q, qBase + first * qStride), qStride, D, count);
        }
      }
    }
  }
}

/** Zeroes n rows of `width` floats, `stride` floats apart. */
function zeroRows(x: usize, n: i32, stride: i32, width: i32): void {
  if (stride == width) {
    zero(x, n * width);
    return;
  }
  for (let r = 0; r < n; r++) zero(at(x, r * stride), width);
}

/**
 * weightedRows() for two rows at once: dst0 over keys [0, n0), dst1 over [0, n1), n0 <= n1; the
 * keys both see are loaded once, and each row's sum runs over j in order, as in weightedRows().
 */
function weightedRowsPair(
  dst0: usize, dst1: usize, w0: usize, w1: usize, base: usize, stride: i32, D: i32, n0: i32, n1: i32, scale0: f32, scale1: f32,
): void {
  const rowBytes = <usize>stride << 2;
  const vs0 = f32x4.splat(scale0), vs1 = f32x4.splat(scale1);
  let d = 0;
  for (; d + 16 <= D; d += 16) {
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
    let r = at(base, d);
    let j = 0;
    for (; j < n0; j++) {
      const p = v128.load32_splat(at(w0, j)), p1 = v128.load32_splat(at(w1, j));
      const v0 = v128.load(r), v1 = v128.load(r, 16), v2 = v128.load(r, 32), v3 = v128.load(r, 48);
      a0 = f32x4.add(a0, f32x4.mul(p, v0));
      a1 = f32x4.add(a1, f32x4.mul(p, v1));
      a2 = f32x4.add(a2, f32x4.mul(p, v2));
      a3 = f32x4.add(a3, f32x4.mul(p, v3));
      b0 = f32x4.add(b0, f32x4.mul(p1, v0));
      b1 = f32x4.add(b1, f32x4.mul(p1, v1));
      b2 = f32x4.add(b2, f32x4.mul(p1, v2));
      b3 = f32x4.add(b3, f32x4.mul(p1, v3));
      r += rowBytes;
    }
    for (; j < n1; j++) {
      const p1 = v128.load32_splat(at(w1, j));
      b0 = f32x4.add(b0, f32x4.mul(p1, v128.load(r)));
      b1 = f32x4.add(b1, f32x4.mul(p1, v128.load(r, 16)));
      b2 = f32x4.add(b2, f32x4.mul(p1, v128.load(r, 32)));
      b3 = f32x4.add(b3, f32x4.mul(p1, v128.load(r, 48)));
      r += rowBytes;
    }
    const o = at(dst0, d), o1 = at(dst1, d);
    v128.store(o, f32x4.mul(a0, vs0));
    v128.store(o, f32x4.mul(a1, vs0), 16);
    v128.store(o, f32x4.mul(a2, vs0), 32);
    v128.store(o, f32x4.mul(a3, vs0), 48);
    v128.store(o1, f32x4.mul(b0, vs1));
    v128.store(o1, f32x4.mul(b1, vs1), 16);
    v128.store(o1, f32x4.mul(b2, vs1), 32);
    v128.store(o1, f32x4.mul(b3, vs1), 48);
  }
  if (d < D) {
    // the last columns (D not a multiple of 16): row by row, as weightedRows() does them
    weightedRowsFrom(dst0, w0, base, stride, D, n0, scale0, d);
    weightedRowsFrom(dst1, w1, base, stride, D, n1, scale1, d);
  }
}

/**
 * y[:D] += w[i·wStride]·x_i[:D] for i < n in order (x_i at x + i·xStride floats): y row kept in
 * registers, 16 columns at a time; each step is y + w·x, as axpy.
 */
function accumulateRows(y: usize, w: usize, wStride: i32, x: usize, xStride: i32, D: i32, n: i32): void {
  if (n <= 0) return;
  const wBytes = <usize>wStride << 2, xBytes = <usize>xStride << 2;
  let d = 0;
  for (; d + 16 <= D; d += 16) {
    const yo = at(y, d);
    let a0 = v128.load(yo), a1 = v128.load(yo, 16), a2 = v128.load(yo, 32), a3 = v128.load(yo, 48);
    let wp = w, xp = at(x, d);
    for (let i = 0; i < n; i++) {
      const c = v128.load32_splat(wp);
      a0 = f32x4.add(a0, f32x4.mul(c, v128.load(xp)));
      a1 = f32x4.add(a1, f32x4.mul(c, v128.load(xp, 16)));
      a2 = f32x4.add(a2, f32x4.mul(c, v128.load(xp, 32)));
      a3 = f32x4.add(a3, f32x4.mul(c, v128.load(xp, 48)));
      wp += wBytes;
      xp += xBytes;
    }
    v128.store(yo, a0);
    v128.store(yo, a1, 16);
    v128.store(yo, a2, 32);
    v128.store(yo, a3, 48);
  }
  for (; d + 4 <= D; d += 4) {
    const yo = at(y, d);
    let a0 = v128.load(yo);
    let wp = w, xp = at(x, d);
    for (let i = 0; i < n; i++) {
      a0 = f32x4.add(a0, f32x4.mul(v128.load32_splat(wp), v128.load(xp)));
      wp += wBytes;
      xp += xBytes;
    }
    v128.store(yo, a0);
  }
  for (; d < D; d++) {
    const yo = at(y, d);
    let a = load<f32>(yo);
    let wp = w, xp = at(x, d);
    for (let i = 0; i < n; i++) {
      a += load<f32>(wp) * load<f32>(xp);
      wp += wBytes;
      xp += xBytes;
    }
    store<f32>(yo, a);
  }
}

/** p = exp(p) in place, ds = p·ds·scale over [0, n) (p holds scale·q·k − lse, ds holds dout·v − delta). */
function dsRow(pbuf: usize, dsbuf: usize, n: i32, sc: f32): void {
  const vsc = f32x4.splat(sc);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const p = vexpFast(v128.load(at(pbuf, j)));
    v128.store(at(pbuf, j), p);
    v128.store(at(dsbuf, j), f32x4.mul(f32x4.mul(p, v128.load(at(dsbuf, j))), vsc));
  }
  for (; j < n; j++) {
    const p = sexpFast(load<f32>(at(pbuf, j)));
    store<f32>(at(pbuf, j), p);
    store<f32>(at(dsbuf, j), p * load<f32>(at(dsbuf, j)) * sc);
  }
}

/**
 * dst[j] = scale·(x · rows[j]) − shift for j < n, rows[j] at base + j·stride floats, four rows per
 * step (x is loaded once per step). Returns max_j dst[j].
 */
function scores(x: usize, base: usize, stride: i32, D: i32, n: i32, scale: f32, shift: f32, dst: usize): f32 {
  return scoresRange(x, base, stride, D, 0, n, scale, shift, dst);
}

/**
 * scores() for keys [j0, n): four keys per step from j0 (a multiple of 4, so every key takes the
 * path it takes in scores()), then one at a time. Returns the max over those keys (−inf if none).
 */
function scoresRange(x: usize, base: usize, stride: i32, D: i32, j0: i32, n: i32, scale: f32, shift: f32, dst: usize): f32 {
  const vsc = f32x4.splat(scale), vsh = f32x4.splat(shift);
  let vm = f32x4.splat(-Infinity);
  let j = j0;
  for (; j + 4 <= n; j += 4) {
    const r0 = at(base, j * stride);
    const s = f32x4.sub(f32x4.mul(dot4(x, r0, <usize>stride << 2, D), vsc), vsh);
    v128.store(at(dst, j), s);
    vm = f32x4.max(vm, s);
  }
  let m = j > j0 ? max(max(f32x4.extract_lane(vm, 0), f32x4.extract_lane(vm, 1)), max(f32x4.extract_lane(vm, 2), f32x4.extract_lane(vm, 3))) : -Infinity;
  for (; j < n; j++) {
    const s = dot(x, at(base, j * stride), D) * scale - shift;
    store<f32>(at(dst, j), s);
    m = max(m, s);
  }
  return m;
}

// maxima of the last scoresPair() call (per instance: each worker has its own globals)
let pairMax0: f32 = 0, pairMax1: f32 = 0;

/**
 * scores() for two query rows x0, x1 over keys [0, n4), n4 a multiple of 4: the four-key steps of
 * scores() for both rows, each key row loaded once. Maxima in pairMax0 / pairMax1 (−inf if n4 = 0).
 */
function scoresPair(
  x0: usize, x1: usize, base: usize, stride: i32, D: i32, n4: i32, scale: f32, shift0: f32, shift1: f32, dst0: usize, dst1: usize,
): void {
  const vsc = f32x4.splat(scale), vsh0 = f32x4.splat(shift0), vsh1 = f32x4.splat(shift1);
  const rowBytes = <usize>stride << 2;
  let vm0 = f32x4.splat(-Infinity), vm1 = f32x4.splat(-Infinity);
  for (let j = 0; j < n4; j += 4) {
    const r0 = at(base, j * stride), r1 = r0 + rowBytes, r2 = r1 + rowBytes, r3 = r2 + rowBytes;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
    let d = 0;
    for (; d + 4 <= D; d += 4) {
      const o = <usize>d << 2;
      const xv = v128.load(x0 + o), yv = v128.load(x1 + o);
      const k0 = v128.load(r0 + o), k1 = v128.load(r1 + o), k2 = v128.load(r2 + o), k3 = v128.load(r3 + o);
      a0 = f32x4.add(a0, f32x4.mul(xv, k0));
      a1 = f32x4.add(a1, f32x4.mul(xv, k1));
      a2 = f32x4.add(a2, f32x4.mul(xv, k2));
      a3 = f32x4.add(a3, f32x4.mul(xv, k3));
      b0 = f32x4.add(b0, f32x4.mul(yv, k0));
      b1 = f32x4.add(b1, f32x4.mul(yv, k1));
      b2 = f32x4.add(b2, f32x4.mul(yv, k2));
      b3 = f32x4.add(b3, f32x4.mul(yv, k3));
    }
    let ra = reduce4(a0, a1, a2, a3), rb = reduce4(b0, b1, b2, b3);
    if (d < D) {
      ra = f32x4.add(ra, dotTail4(x0, r0, rowBytes, d, D));
      rb = f32x4.add(rb, dotTail4(x1, r0, rowBytes, d, D));
    }
    const s0 = f32x4.sub(f32x4.mul(ra, vsc), vsh0), s1 = f32x4.sub(f32x4.mul(rb, vsc), vsh1);
    v128.store(at(dst0, j), s0);
    v128.store(at(dst1, j), s1);
    vm0 = f32x4.max(vm0, s0);
    vm1 = f32x4.max(vm1, s1);
  }
  pairMax0 = n4 > 0 ? max(max(f32x4.extract_lane(vm0, 0), f32x4.extract_lane(vm0, 1)), max(f32x4.extract_lane(vm0, 2), f32x4.extract_lane(vm0, 3))) : -Infinity;
  pairMax1 = n4 > 0 ? max(max(f32x4.extract_lane(vm1, 0), f32x4.extract_lane(vm1, 1)), max(f32x4.extract_lane(vm1, 2), f32x4.extract_lane(vm1, 3))) : -Infinity;
}

/** Lane i = the sum of a_i's lanes (the transpose-reduce of dot4). */
@inline function reduce4(a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  const u0 = f32x4.add(i32x4.shuffle(a0, a1, 0, 4, 1, 5), i32x4.shuffle(a0, a1, 2, 6, 3, 7));
  const u1 = f32x4.add(i32x4.shuffle(a2, a3, 0, 4, 1, 5), i32x4.shuffle(a2, a3, 2, 6, 3, 7));
  return f32x4.add(i32x4.shuffle(u0, u1, 0, 1, 4, 5), i32x4.shuffle(u0, u1, 2, 3, 6, 7));
}

/** The scalar tail of dot4 (dims [d, D)), as a vector of the four rows' partial sums. */
function dotTail4(x: usize, r0: usize, rowBytes: usize, d: i32, D: i32): v128 {
  const r1 = r0 + rowBytes, r2 = r1 + rowBytes, r3 = r2 + rowBytes;
  let t0: f32 = 0, t1: f32 = 0, t2: f32 = 0, t3: f32 = 0;
  for (; d < D; d++) {
    const o = <usize>d << 2;
    const xs = load<f32>(x + o);
    t0 += xs * load<f32>(r0 + o);
    t1 += xs * load<f32>(r1 + o);
    t2 += xs * load<f32>(r2 + o);
    t3 += xs * load<f32>(r3 + o);
  }
  let tv = f32x4.splat(t0);
  tv = f32x4.replace_lane(tv, 1, t1);
  tv = f32x4.replace_lane(tv, 2, t2);
  tv = f32x4.replace_lane(tv, 3, t3);
  return tv;
}

/** [x·r0, x·r1, x·r2, x·r3] with r_i = r0 + i·rowBytes, each of length D. */
@inline function dot4(x: usize, r0: usize, rowBytes: usize, D: i32): v128 {
  const r1 = r0 + rowBytes, r2 = r1 + rowBytes, r3 = r2 + rowBytes;
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let d = 0;
  for (; d + 4 <= D; d += 4) {
    const o = <usize>d << 2;
    const xv = v128.load(x + o);
    a0 = f32x4.add(a0, f32x4.mul(xv, v128.load(r0 + o)));
    a1 = f32x4.add(a1, f32x4.mul(xv, v128.load(r1 + o)));
    a2 = f32x4.add(a2, f32x4.mul(xv, v128.load(r2 + o)));
    a3 = f32x4.add(a3, f32x4.mul(xv, v128.load(r3 + o)));
  }
  // transpose-reduce: lane i of the result is the sum of a_i's lanes
  let r = reduce4(a0, a1, a2, a3);
  if (d < D) r = f32x4.add(r, dotTail4(x, r0, rowBytes, d, D));
  return r;
}

/** dst[:D] = scale·Σ_j w[j]·rows[j][:D], j < n, rows[j] at base + j·stride floats; 16 columns in registers. */
function weightedRows(dst: usize, w: usize, base: usize, stride: i32, D: i32, n: i32, scale: f32): void {
  weightedRowsFrom(dst, w, base, stride, D, n, scale, 0);
}

/** weightedRows() for columns [d0, D), d0 a multiple of 16. */
function weightedRowsFrom(dst: usize, w: usize, base: usize, stride: i32, D: i32, n: i32, scale: f32, d0: i32): void {
  const rowBytes = <usize>stride << 2;
  const vsc = f32x4.splat(scale);
  let d = d0;
  for (; d + 16 <= D; d += 16) {
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let r = at(base, d);
    for (let j = 0; j < n; j++) {
      const p = v128.load32_splat(at(w, j));
      a0 = f32x4.add(a0, f32x4.mul(p, v128.load(r)));
      a1 = f32x4.add(a1, f32x4.mul(p, v128.load(r, 16)));
      a2 = f32x4.add(a2, f32x4.mul(p, v128.load(r, 32)));
      a3 = f32x4.add(a3, f32x4.mul(p, v128.load(r, 48)));
      r += rowBytes;
    }
    const o = at(dst, d);
    v128.store(o, f32x4.mul(a0, vsc));
    v128.store(o, f32x4.mul(a1, vsc), 16);
    v128.store(o, f32x4.mul(a2, vsc), 32);
    v128.store(o, f32x4.mul(a3, vsc), 48);
  }
  for (; d + 4 <= D; d += 4) {
    let a0 = f32x4.splat(0);
    let r = at(base, d);
    for (let j = 0; j < n; j++) {
      a0 = f32x4.add(a0, f32x4.mul(v128.load32_splat(at(w, j)), v128.load(r)));
      r += rowBytes;
    }
    v128.store(at(dst, d), f32x4.mul(a0, vsc));
  }
  for (; d < D; d++) {
    let s: f32 = 0;
    let r = at(base, d);
    for (let j = 0; j < n; j++) {
      s += load<f32>(at(w, j)) * load<f32>(r);
      r += rowBytes;
    }
    store<f32>(at(dst, d), s * scale);
  }
}
