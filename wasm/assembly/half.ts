// 16-bit storage (f16, bf16) <-> f32 on bit patterns: the AssemblyScript twin of kernels/half.wgsl
// and of the host's src/tensor/half.ts (same bits). Used by the cast kernel and by the kernels that
// read 16-bit weights (matmul's B while it is packed, embedding rows). Not part of the wasm ABI.
// Narrowing rounds to nearest, ties to even; f16 keeps subnormals and a NaN's sign and payload;
// any NaN becomes bf16 0x7fc0 (PyTorch's c10::BFloat16).

/** f16 bits (low 16 bits of h) -> the f32 bits of the same value (exact). */
@inline export function f16ToF32Bits(h: u32): u32 {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp == 0x1f) return sign | 0x7f800000 | (mant << 13); // inf / NaN
  if (exp != 0) return sign | ((exp + 112) << 23) | (mant << 13);
  if (mant == 0) return sign;
  // subnormal mant·2^-24: shift the leading 1 up to bit 10 (s = 10 − its position)
  const s = <u32>clz(mant) - 21;
  return sign | ((113 - s) << 23) | (((mant << s) & 0x3ff) << 13);
}

/** bf16 bits -> f32 bits (exact). */
@inline export function bf16ToF32Bits(h: u32): u32 {
  return h << 16;
}

/** f32 bits -> f16 bits, round to nearest even. */
@inline export function f32BitsToF16(x: u32): u32 {
  const sign = (x >> 16) & 0x8000;
  const exp = <i32>((x >> 23) & 0xff);
  const mant = x & 0x7fffff;
  if (exp == 0xff) return mant != 0 ? sign | 0x7e00 | (mant >> 13) : sign | 0x7c00;
  const e = exp - 112; // f16 biased exponent
  if (e >= 0x1f) return sign | 0x7c00;
  if (e >= 1) {
    let r = (<u32>e << 10) | (mant >> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1) != 0)) r++; // a carry may reach inf: correct
    return sign | r;
  }
  const shift = <u32>(14 - e);
  if (shift > 24) return sign;
  const sig = mant | 0x800000;
  let r = sig >> shift;
  const rem = sig & ((1 << shift) - 1);
  const half: u32 = 1 << (shift - 1);
  if (rem > half || (rem == half && (r & 1) != 0)) r++;
  return sign | r;
}

/** f32 bits -> bf16 bits, round to nearest even; NaN -> 0x7fc0. */
@inline export function f32BitsToBf16(x: u32): u32 {
  if ((x & 0x7fffffff) > 0x7f800000) return 0x7fc0;
  return (x + 0x7fff + ((x >> 16) & 1)) >> 16;
}

/** Element i of a 16-bit array (f16 when bf16 = false) as an f32. */
@inline export function loadHalf(ptr: usize, i: usize, bf16: bool): f32 {
  const h = <u32>load<u16>(ptr + (i << 1));
  return reinterpret<f32>(bf16 ? bf16ToF32Bits(h) : f16ToF32Bits(h));
}

/**
 * Widens n 16-bit elements at src into f32 at dst (bf16: a shift, eight at a time; f16: scalar, for
 * its subnormals). matmul's packing of a 16-bit B and embedding rows use it.
 */
export function widenHalf(src: usize, dst: usize, n: i32, bf16: bool): void {
  let i = 0;
  if (bf16) {
    for (; i + 8 <= n; i += 8) {
      const h = v128.load(src + (<usize>i << 1));
      v128.store(dst + (<usize>i << 2), i32x4.shl(i32x4.extend_low_i16x8_u(h), 16));
      v128.store(dst + (<usize>i << 2) + 16, i32x4.shl(i32x4.extend_high_i16x8_u(h), 16));
    }
  }
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), loadHalf(src, <usize>i, bf16));
}
