// ggml tensor types for GGUF files: the type table (ids, block sizes, bytes per block), and the
// quantizers and dequantizers kiln writes and reads: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q4_K
// and Q6_K. Quantizers follow llama.cpp's reference C functions (ggml-quants.c quantize_row_*_ref)
// operation by operation in float32 (Math.fround after every step, no fused multiply-add), so a row
// quantizes to the bytes the reference gives; dequantizers follow dequantize_row_*.
// Reference: ggml/src/ggml-quants.c, ggml/src/ggml-common.h (block layouts), gguf-py/gguf/constants.py.

import { f16ToF32, f32ArrayToBf16, f32ArrayToF16, f32ToF16, bf16ArrayToF32, f16ArrayToF32 } from "../tensor/half.ts";

/** Every ggml type id a GGUF file may hold, with its block size (elements) and block bytes. */
export const GGML_TYPES = {
  F32: { id: 0, block: 1, bytes: 4 },
  F16: { id: 1, block: 1, bytes: 2 },
  Q4_0: { id: 2, block: 32, bytes: 18 },
  Q4_1: { id: 3, block: 32, bytes: 20 },
  Q5_0: { id: 6, block: 32, bytes: 22 },
  Q5_1: { id: 7, block: 32, bytes: 24 },
  Q8_0: { id: 8, block: 32, bytes: 34 },
  Q8_1: { id: 9, block: 32, bytes: 36 },
  Q2_K: { id: 10, block: 256, bytes: 84 },
  Q3_K: { id: 11, block: 256, bytes: 110 },
  Q4_K: { id: 12, block: 256, bytes: 144 },
  Q5_K: { id: 13, block: 256, bytes: 176 },
  Q6_K: { id: 14, block: 256, bytes: 210 },
  Q8_K: { id: 15, block: 256, bytes: 292 },
  IQ2_XXS: { id: 16, block: 256, bytes: 66 },
  IQ2_XS: { id: 17, block: 256, bytes: 74 },
  IQ3_XXS: { id: 18, block: 256, bytes: 98 },
  IQ1_S: { id: 19, block: 256, bytes: 50 },
  IQ4_NL: { id: 20, block: 32, bytes: 18 },
  IQ3_S: { id: 21, block: 256, bytes: 110 },
  IQ2_S: { id: 22, block: 256, bytes: 82 },
  IQ4_XS: { id: 23, block: 256, bytes: 136 },
  I8: { id: 24, block: 1, bytes: 1 },
  I16: { id: 25, block: 1, bytes: 2 },
  I32: { id: 26, block: 1, bytes: 4 },
  I64: { id: 27, block: 1, bytes: 8 },
  F64: { id: 28, block: 1, bytes: 8 },
  IQ1_M: { id: 29, block: 256, bytes: 56 },
  BF16: { id: 30, block: 1, bytes: 2 },
  TQ1_0: { id: 34, block: 256, bytes: 54 },
  TQ2_0: { id: 35, block: 256, bytes: 66 },
} as const;

export type GGMLTypeName = keyof typeof GGML_TYPES;
/** The types kiln quantizes to (writes) and dequantizes from (reads). */
export const KILN_TYPES = ["F32", "F16", "BF16", "Q8_0", "Q5_0", "Q4_0", "Q4_1", "Q4_K", "Q6_K"] as const;
export type KilnType = (typeof KILN_TYPES)[number];

const BY_ID = new Map<number, GGMLTypeName>(Object.entries(GGML_TYPES).map(([name, t]) => [t.id, name as GGMLTypeName]));

/** The type name for a ggml type id, or undefined for an id ggml does not define. */
export function ggmlTypeName(id: number): GGMLTypeName | undefined {
  return BY_ID.get(id);
}

/** Bytes that `count` elements of `type` take (count must be a multiple of the block). */
export function ggmlByteLength(type: GGMLTypeName, count: number): number {
  const t = GGML_TYPES[type];
  return (count / t.block) * t.bytes;
}

const f = Math.fround;
const FLT_MAX = 3.4028234663852886e38;
/** 0.1f */
const F01 = Math.fround(0.1);

/** ggml's nearest_int: float32 round-half-to-even through the 1.5·2^23 trick. */
function nearestInt(x: number): number {
  return f(x + 12582912) - 12582912;
}

/** C's (int8_t) cast of a float: truncation toward zero, wrapped to int8. */
function toInt8(x: number): number {
  return ((Math.trunc(x) << 24) >> 24);
}

/**
 * Quantizes `data` (rows of `rowLength`, a multiple of the type's block) to `type`'s bytes, as
 * llama.cpp's reference quantizer does.
 */
export function quantize(type: KilnType, data: Float32Array, rowLength: number): Uint8Array {
  const { block, bytes } = GGML_TYPES[type];
  if (rowLength % block !== 0) throw new Error(`[gguf] ${type} needs rows that are a multiple of ${block}, got ${rowLength}`);
  switch (type) {
    case "F32":
      return new Uint8Array(data.slice().buffer);
    case "F16":
      return new Uint8Array(f32ArrayToF16(data).buffer);
    case "BF16":
      return new Uint8Array(f32ArrayToBf16(data).buffer);
  }
  const nb = data.length / block;
  const out = new Uint8Array(nb * bytes);
  const view = new DataView(out.buffer);
  const quantizer = { Q8_0: q8_0, Q5_0: q5_0, Q4_0: q4_0, Q4_1: q4_1, Q4_K: q4_K, Q6_K: q6_K }[type];
  for (let i = 0; i < nb; i++) quantizer(data, i * block, out, view, i * bytes);
  return out;
}

/** Dequantizes `count` elements of `type` from `bytes` to float32, as llama.cpp's dequantize_row_*. */
export function dequantize(type: KilnType, bytes: Uint8Array, count: number): Float32Array {
  const { block, bytes: size } = GGML_TYPES[type];
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  switch (type) {
    case "F32":
      return new Float32Array(aligned.buffer, aligned.byteOffset, count).slice();
    case "F16":
      return f16ArrayToF32(new Uint16Array(aligned.buffer, aligned.byteOffset, count));
    case "BF16":
      return bf16ArrayToF32(new Uint16Array(aligned.buffer, aligned.byteOffset, count));
  }
  const out = new Float32Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dq = { Q8_0: dq8_0, Q5_0: dq5_0, Q4_0: dq4_0, Q4_1: dq4_1, Q4_K: dq4_K, Q6_K: dq6_K }[type];
  for (let i = 0; i < count / block; i++) dq(bytes, view, i * size, out, i * block);
  return out;
}

type Quantizer = (x: Float32Array, xo: number, y: Uint8Array, v: DataView, yo: number) => void;
type Dequantizer = (y: Uint8Array, v: DataView, yo: number, out: Float32Array, oo: number) => void;

const half = (v: DataView, at: number) => f16ToF32(v.getUint16(at, true));

// ---- 32-element blocks -------------------------------------------------------------------------

/** block_q8_0 { f16 d; int8 qs[32] }: d = amax/127, q = roundf(x/d) (half away from zero). */
const q8_0: Quantizer = (x, xo, y, v, yo) => {
  let amax = 0;
  for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[xo + j]));
  const d = f(amax / 127);
  const id = d ? f(1 / d) : 0;
  v.setUint16(yo, f32ToF16(d), true);
  for (let j = 0; j < 32; j++) {
    const x0 = f(x[xo + j] * id);
    y[yo + 2 + j] = Math.sign(x0) * Math.round(Math.abs(x0)) & 0xff; // roundf
  }
};
const dq8_0: Dequantizer = (y, v, yo, out, oo) => {
  const d = half(v, yo);
  for (let j = 0; j < 32; j++) out[oo + j] = f(((y[yo + 2 + j] << 24) >> 24) * d);
};

/** block_q4_0 { f16 d; u8 qs[16] }: d = max/−8 (max = the value of largest magnitude), q = min(15, (int8)(x/d + 8.5)). */
const q4_0: Quantizer = (x, xo, y, v, yo) => {
  let amax = 0, max = 0;
  for (let j = 0; j < 32; j++) {
    const a = Math.abs(x[xo + j]);
    if (amax < a) (amax = a), (max = x[xo + j]);
  }
  const d = f(max / -8);
  const id = d ? f(1 / d) : 0;
  v.setUint16(yo, f32ToF16(d), true);
  for (let j = 0; j < 16; j++) {
    const xi0 = Math.min(15, toInt8(f(f(x[xo + j] * id) + 8.5)));
    const xi1 = Math.min(15, toInt8(f(f(x[xo + 16 + j] * id) + 8.5)));
    y[yo + 2 + j] = (xi0 & 0xff) | ((xi1 << 4) & 0xff);
  }
};
const dq4_0: Dequantizer = (y, v, yo, out, oo) => {
  const d = half(v, yo);
  for (let j = 0; j < 16; j++) {
    out[oo + j] = f(((y[yo + 2 + j] & 0x0f) - 8) * d);
    out[oo + j + 16] = f(((y[yo + 2 + j] >> 4) - 8) * d);
  }
};

/** block_q4_1 { f16 d, m; u8 qs[16] }: d = (max − min)/15, m = min, q = min(15, (int8)((x − min)/d + 0.5)). */
const q4_1: Quantizer = (x, xo, y, v, yo) => {
  let min = FLT_MAX, max = -FLT_MAX;
  for (let j = 0; j < 32; j++) {
    const e = x[xo + j];
    if (e < min) min = e;
    if (e > max) max = e;
  }
  const d = f(f(max - min) / 15);
  const id = d ? f(1 / d) : 0;
  v.setUint16(yo, f32ToF16(d), true);
  v.setUint16(yo + 2, f32ToF16(min), true);
  for (let j = 0; j < 16; j++) {
    const xi0 = Math.min(15, toInt8(f(f(f(x[xo + j] - min) * id) + 0.5)));
    const xi1 = Math.min(15, toInt8(f(f(f(x[xo + 16 + j] - min) * id) + 0.5)));
    y[yo + 4 + j] = (xi0 & 0xff) | ((xi1 << 4) & 0xff);
  }
};
const dq4_1: Dequantizer = (y, v, yo, out, oo) => {
  const d = half(v, yo);
  const m = half(v, yo + 2);
  for (let j = 0; j < 16; j++) {
    out[oo + j] = f(f((y[yo + 4 + j] & 0x0f) * d) + m);
    out[oo + j + 16] = f(f((y[yo + 4 + j] >> 4) * d) + m);
  }
};

/** block_q5_0 { f16 d; u8 qh[4]; u8 qs[16] }: d = max/−16, q = min(31, (int8)(x/d + 16.5)), 5th bits in qh. */
const q5_0: Quantizer = (x, xo, y, v, yo) => {
  let amax = 0, max = 0;
  for (let j = 0; j < 32; j++) {
    const a = Math.abs(x[xo + j]);
    if (amax < a) (amax = a), (max = x[xo + j]);
  }
  const d = f(max / -16);
  const id = d ? f(1 / d) : 0;
  v.setUint16(yo, f32ToF16(d), true);
  let qh = 0;
  for (let j = 0; j < 16; j++) {
    const xi0 = Math.min(31, toInt8(f(f(x[xo + j] * id) + 16.5))) & 0xff;
    const xi1 = Math.min(31, toInt8(f(f(x[xo + 16 + j] * id) + 16.5))) & 0xff;
    y[yo + 6 + j] = (xi0 & 0x0f) | ((xi1 & 0x0f) << 4);
    qh |= ((xi0 & 0x10) >>> 4) << j;
    qh |= ((xi1 & 0x10) >>> 4) << (j + 16);
  }
  v.setUint32(yo + 2, qh >>> 0, true);
};
const dq5_0: Dequantizer = (y, v, yo, out, oo) => {
  const d = half(v, yo);
  const qh = v.getUint32(yo + 2, true);
  for (let j = 0; j < 16; j++) {
    const xh0 = ((qh >>> j) << 4) & 0x10;
    const xh1 = (qh >>> (j + 12)) & 0x10;
    out[oo + j] = f((((y[yo + 6 + j] & 0x0f) | xh0) - 16) * d);
    out[oo + j + 16] = f((((y[yo + 6 + j] >> 4) | xh1) - 16) * d);
  }
};

// ---- k-quants: 256-element super-blocks ---------------------------------------------------------

/** ggml's make_qx_quants (symmetric, rmse_type 1 = weights x², no quant weights), float32 throughout. */
function makeQxQuants(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array, lo: number): number {
  let max = 0, amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]);
    if (ax > amax) (amax = ax), (max = x[xo + i]);
  }
  if (amax < 1e-15) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    return 0;
  }
  let iscale = f(-nmax / max);
  let sumlx = 0, suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i];
    let l = nearestInt(f(iscale * xi));
    l = Math.max(-nmax, Math.min(nmax - 1, l));
    L[lo + i] = l + nmax;
    const w = f(xi * xi);
    sumlx = f(sumlx + f(f(w * xi) * l));
    suml2 = f(suml2 + f(f(w * l) * l));
  }
  let scale = suml2 ? f(sumlx / suml2) : 0;
  let best = f(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = f(-f(nmax + f(F01 * is)) / max);
    sumlx = suml2 = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i];
      let l = nearestInt(f(iscale * xi));
      l = Math.max(-nmax, Math.min(nmax - 1, l));
      const w = f(xi * xi);
      sumlx = f(sumlx + f(f(w * xi) * l));
      suml2 = f(suml2 + f(f(w * l) * l));
    }
    if (suml2 > 0 && f(sumlx * sumlx) > f(best * suml2)) {
      for (let i = 0; i < n; i++) {
        const l = nearestInt(f(iscale * x[xo + i]));
        L[lo + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, l));
      }
      scale = f(sumlx / suml2);
      best = f(scale * sumlx);
    }
  }
  return scale;
}

/** ggml's make_qkx2_quants (asymmetric: scale and min), float32 throughout; returns [scale, the_min]. */
function makeQkx2Quants(n: number, nmax: number, x: Float32Array, xo: number, weights: Float32Array, L: Uint8Array, lo: number, Laux: Uint8Array,
  rmin: number, rdelta: number, nstep: number): [number, number] {
  let min = x[xo], max = x[xo];
  let sumW = weights[0];
  let sumX = f(sumW * x[xo]);
  for (let i = 1; i < n; i++) {
    const xi = x[xo + i];
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    const w = weights[i];
    sumW = f(sumW + w);
    sumX = f(sumX + f(w * xi));
  }
  if (min > 0) min = 0;
  if (max === min) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    return [0, -min];
  }
  let iscale = f(nmax / f(max - min));
  let scale = f(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = nearestInt(f(iscale * f(x[xo + i] - min)));
    L[lo + i] = Math.max(0, Math.min(nmax, l));
    let diff = f(f(f(scale * L[lo + i]) + min) - x[xo + i]);
    diff = f(diff * diff);
    bestError = f(bestError + f(weights[i] * diff));
  }
  for (let is = 0; is <= nstep; is++) {
    iscale = f(f(f(rmin + f(rdelta * is)) + nmax) / f(max - min));
    let sumL = 0, sumL2 = 0, sumXL = 0;
    for (let i = 0; i < n; i++) {
      let l = nearestInt(f(iscale * f(x[xo + i] - min)));
      l = Math.max(0, Math.min(nmax, l));
      Laux[i] = l;
      const w = weights[i];
      sumL = f(sumL + f(w * l));
      sumL2 = f(sumL2 + f(f(w * l) * l));
      sumXL = f(sumXL + f(f(w * l) * x[xo + i]));
    }
    const D = f(f(sumW * sumL2) - f(sumL * sumL));
    if (D > 0) {
      let thisScale = f(f(f(sumW * sumXL) - f(sumX * sumL)) / D);
      let thisMin = f(f(f(sumL2 * sumX) - f(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = f(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        let diff = f(f(f(thisScale * Laux[i]) + thisMin) - x[xo + i]);
        diff = f(diff * diff);
        curError = f(curError + f(weights[i] * diff));
      }
      if (curError < bestError) {
        for (let i = 0; i < n; i++) L[lo + i] = Laux[i];
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return [scale, -min];
}

/** get_scale_min_k4: the 6-bit scale and min of sub-block j from the 12 packed bytes at q[qo]. */
function scaleMinK4(j: number, q: Uint8Array, qo: number): [number, number] {
  if (j < 4) return [q[qo + j] & 63, q[qo + j + 4] & 63];
  return [(q[qo + j + 4] & 0xf) | ((q[qo + j - 4] >> 6) << 4), (q[qo + j + 4] >> 4) | ((q[qo + j] >> 6) << 4)];
}

/** block_q4_K { f16 d, dmin; u8 scales[12]; u8 qs[128] }: 8 sub-blocks of 32 with 6-bit scales and mins. */
const q4_K: Quantizer = (x, xo, y, v, yo) => {
  const L = new Uint8Array(256), Laux = new Uint8Array(32), weights = new Float32Array(32);
  const mins = new Float32Array(8), scales = new Float32Array(8);
  let maxScale = 0, maxMin = 0;
  for (let j = 0; j < 8; j++) {
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = f(sumX2 + f(x[xo + 32 * j + l] * x[xo + 32 * j + l]));
    const avX = f(Math.sqrt(f(sumX2 / 32)));
    for (let l = 0; l < 32; l++) weights[l] = f(avX + Math.abs(x[xo + 32 * j + l]));
    [scales[j], mins[j]] = makeQkx2Quants(32, 15, x, xo + 32 * j, weights, L, 32 * j, Laux, -1, F01, 20);
    if (scales[j] > maxScale) maxScale = scales[j];
    if (mins[j] > maxMin) maxMin = mins[j];
  }
  const invScale = maxScale > 0 ? f(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? f(63 / maxMin) : 0;
  const sc = y.subarray(yo + 4, yo + 16);
  sc.fill(0);
  for (let j = 0; j < 8; j++) {
    const ls = Math.min(63, nearestInt(f(invScale * scales[j])) & 0xff);
    const lm = Math.min(63, nearestInt(f(invMin * mins[j])) & 0xff);
    if (j < 4) {
      sc[j] = ls;
      sc[j + 4] = lm;
    } else {
      sc[j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
      sc[j - 4] |= (ls >> 4) << 6;
      sc[j] |= (lm >> 4) << 6;
    }
  }
  v.setUint16(yo, f32ToF16(f(maxScale / 63)), true);
  v.setUint16(yo + 2, f32ToF16(f(maxMin / 63)), true);
  const dAll = half(v, yo), dminAll = half(v, yo + 2);
  for (let j = 0; j < 8; j++) {
    const [s, m] = scaleMinK4(j, y, yo + 4);
    const d = f(dAll * s);
    if (!d) continue;
    const dm = f(dminAll * m);
    for (let ii = 0; ii < 32; ii++) {
      const l = nearestInt(f(f(x[xo + 32 * j + ii] + dm) / d));
      L[32 * j + ii] = Math.max(0, Math.min(15, l));
    }
  }
  let q = yo + 16;
  for (let j = 0; j < 256; j += 64) {
    for (let l = 0; l < 32; l++) y[q + l] = L[j + l] | (L[j + l + 32] << 4);
    q += 32;
  }
};
const dq4_K: Dequantizer = (y, v, yo, out, oo) => {
  const d = half(v, yo), min = half(v, yo + 2);
  let q = yo + 16, is = 0, o = oo;
  for (let j = 0; j < 256; j += 64) {
    const [s1, m1] = scaleMinK4(is, y, yo + 4);
    const [s2, m2] = scaleMinK4(is + 1, y, yo + 4);
    const d1 = f(d * s1), dm1 = f(min * m1), d2 = f(d * s2), dm2 = f(min * m2);
    for (let l = 0; l < 32; l++) out[o++] = f(f(d1 * (y[q + l] & 0xf)) - dm1);
    for (let l = 0; l < 32; l++) out[o++] = f(f(d2 * (y[q + l] >> 4)) - dm2);
    q += 32;
    is += 2;
  }
};

/** block_q6_K { u8 ql[128]; u8 qh[64]; int8 scales[16]; f16 d }: 16 sub-blocks of 16, 6-bit quants. */
const q6_K: Quantizer = (x, xo, y, v, yo) => {
  const L = new Int8Array(256);
  const scales = new Float32Array(16);
  let maxScale = 0, maxAbsScale = 0;
  for (let ib = 0; ib < 16; ib++) {
    const scale = makeQxQuants(16, 32, x, xo + 16 * ib, L, 16 * ib);
    scales[ib] = scale;
    if (Math.abs(scale) > maxAbsScale) (maxAbsScale = Math.abs(scale)), (maxScale = scale);
  }
  y.fill(0, yo, yo + 210);
  if (maxAbsScale < 1e-15) return; // all zero (d = 0)
  const iscale = f(-128 / maxScale);
  v.setUint16(yo + 208, f32ToF16(f(1 / iscale)), true);
  for (let ib = 0; ib < 16; ib++) v.setInt8(yo + 192 + ib, Math.min(127, nearestInt(f(iscale * scales[ib]))));
  const dAll = half(v, yo + 208);
  for (let j = 0; j < 16; j++) {
    const d = f(dAll * v.getInt8(yo + 192 + j));
    if (!d) continue;
    for (let ii = 0; ii < 16; ii++) {
      const l = nearestInt(f(x[xo + 16 * j + ii] / d));
      L[16 * j + ii] = Math.max(-32, Math.min(31, l)) + 32;
    }
  }
  let ql = yo, qh = yo + 128;
  for (let j = 0; j < 256; j += 128) {
    for (let l = 0; l < 32; l++) {
      const q1 = L[j + l] & 0xf, q2 = L[j + l + 32] & 0xf, q3 = L[j + l + 64] & 0xf, q4 = L[j + l + 96] & 0xf;
      y[ql + l] = q1 | (q3 << 4);
      y[ql + l + 32] = q2 | (q4 << 4);
      y[qh + l] = (L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6);
    }
    ql += 64;
    qh += 32;
  }
};
const dq6_K: Dequantizer = (y, v, yo, out, oo) => {
  const d = half(v, yo + 208);
  let ql = yo, qh = yo + 128, sc = yo + 192, o = oo;
  for (let n = 0; n < 256; n += 128) {
    for (let l = 0; l < 32; l++) {
      const is = l >> 4;
      const q1 = ((y[ql + l] & 0xf) | (((y[qh + l] >> 0) & 3) << 4)) - 32;
      const q2 = ((y[ql + l + 32] & 0xf) | (((y[qh + l] >> 2) & 3) << 4)) - 32;
      const q3 = ((y[ql + l] >> 4) | (((y[qh + l] >> 4) & 3) << 4)) - 32;
      const q4 = ((y[ql + l + 32] >> 4) | (((y[qh + l] >> 6) & 3) << 4)) - 32;
      out[o + l] = f(f(d * v.getInt8(sc + is)) * q1);
      out[o + l + 32] = f(f(d * v.getInt8(sc + is + 2)) * q2);
      out[o + l + 64] = f(f(d * v.getInt8(sc + is + 4)) * q3);
      out[o + l + 96] = f(f(d * v.getInt8(sc + is + 6)) * q4);
    }
    o += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
};
