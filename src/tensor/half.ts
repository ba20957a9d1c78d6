// f16 (IEEE 754 binary16) and bf16 (bfloat16) <-> f32 conversions on raw bit patterns, on the host:
// file formats (safetensors, GGUF, checkpoints) and the host side of 16-bit tensors (Tensor.data()
// widens, tensor creation narrows). Widening to f32 is exact; narrowing rounds to nearest, ties to
// even, overflows to ±inf, keeps NaN a NaN (f16: quiet, sign and payload kept; bf16: 0x7fc0, as
// PyTorch's c10::BFloat16 does), and produces f16 subnormals. The device-side `cast` kernel
// (wasm/assembly/cast.ts, kernels/half.wgsl) computes the same bits. Reference: IEEE 754-2019 §3.6;
// bf16 = the top 16 bits of an f32 (as torch.bfloat16 and the safetensors BF16 dtype store it).

const F32_SCRATCH = new Float32Array(1);
const U32_SCRATCH = new Uint32Array(F32_SCRATCH.buffer);

/** f16 bits (0..0xffff) -> the f32 value they encode (exact). */
export function f16ToF32(bits: number): number {
  U32_SCRATCH[0] = f16BitsToF32Bits(bits);
  return F32_SCRATCH[0];
}

/** An f32 value (the number is first rounded to f32) -> f16 bits, round to nearest even. */
export function f32ToF16(value: number): number {
  F32_SCRATCH[0] = value;
  return f32BitsToF16Bits(U32_SCRATCH[0]);
}

/** bf16 bits -> the f32 value they encode (exact). */
export function bf16ToF32(bits: number): number {
  U32_SCRATCH[0] = (bits & 0xffff) << 16;
  return F32_SCRATCH[0];
}

/** An f32 value -> bf16 bits, round to nearest even; NaN stays a (quiet) NaN. */
export function f32ToBf16(value: number): number {
  F32_SCRATCH[0] = value;
  return f32BitsToBf16Bits(U32_SCRATCH[0]);
}

/** Widens an array of f16 bit patterns to f32. */
export function f16ArrayToF32(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  const outBits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) outBits[i] = f16BitsToF32Bits(src[i]);
  return out;
}

/** Widens an array of bf16 bit patterns to f32. */
export function bf16ArrayToF32(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  const outBits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) outBits[i] = src[i] << 16;
  return out;
}

/** Narrows f32 values to f16 bit patterns (round to nearest even). */
export function f32ArrayToF16(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  const srcBits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToF16Bits(srcBits[i]);
  return out;
}

/** Narrows f32 values to bf16 bit patterns (round to nearest even). */
export function f32ArrayToBf16(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  const srcBits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToBf16Bits(srcBits[i]);
  return out;
}

// ---------------------------------------------------------------------------------------------

function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf / NaN (payload kept)
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0; // normal: rebias 15 -> 127
  if (mant === 0) return sign >>> 0; // ±0
  // subnormal: value = mant · 2^-24; normalise so the leading 1 sits at bit 10
  let e = 1;
  while ((mant & 0x400) === 0) {
    mant <<= 1;
    e--;
  }
  return (sign | ((e + 112) << 23) | ((mant & 0x3ff) << 13)) >>> 0;
}

function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return mant !== 0 ? sign | 0x7e00 | (mant >>> 13) : sign | 0x7c00; // NaN (quiet) / inf
  const e = exp - 127 + 15; // f16 biased exponent
  if (e >= 0x1f) return sign | 0x7c00; // |x| >= 2^16: overflow to inf
  if (e >= 1) {
    // normal: drop 13 mantissa bits; a carry out of the mantissa bumps the exponent (up to inf)
    let r = (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && (r & 1) !== 0)) r++;
    return sign | r;
  }
  // subnormal or zero: the 24-bit significand shifted right by 14 - e (>= 14)
  const shift = 14 - e;
  if (shift > 24) return sign; // below half the smallest subnormal: ±0
  const sig = mant | 0x800000;
  let r = sig >>> shift;
  const rem = sig & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rem > half || (rem === half && (r & 1) !== 0)) r++; // may round up to the smallest normal
  return sign | r;
}

function f32BitsToBf16Bits(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return 0x7fc0; // any NaN: PyTorch's canonical quiet NaN
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}
