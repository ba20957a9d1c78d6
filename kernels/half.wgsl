// kernels/half.wgsl: 16-bit storage (f16, bf16) <-> f32 on bit patterns, with u32 words and integer
// ops only (no `shader-f16`; pack2x16float's rounding and overflow are implementation-defined, so it
// is not used). Two elements per word, element 2w in the low half. The same bits as
// wasm/assembly/half.ts and src/tensor/half.ts. shaders.ts prepends this to the families that read
// or write 16-bit tensors (cast, matmul, embedding).

const DT_F32: u32 = 0u;
const DT_F16: u32 = 1u;
const DT_BF16: u32 = 2u;

/** f16 bits -> f32 bits (exact; subnormals normalised with countLeadingZeros). */
fn f16_to_f32_bits(h: u32) -> u32 {
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0x1fu) { return sign | 0x7f800000u | (m << 13u); }
  if (e != 0u) { return sign | ((e + 112u) << 23u) | (m << 13u); }
  if (m == 0u) { return sign; }
  let s = countLeadingZeros(m) - 21u;
  return sign | ((113u - s) << 23u) | (((m << s) & 0x3ffu) << 13u);
}

/** f32 bits -> f16 bits, round to nearest even, overflow to inf, subnormals kept, NaN quiet. */
fn f32_bits_to_f16(x: u32) -> u32 {
  let sign = (x >> 16u) & 0x8000u;
  let exp = i32((x >> 23u) & 0xffu);
  let m = x & 0x7fffffu;
  if (exp == 0xff) { return select(sign | 0x7c00u, sign | 0x7e00u | (m >> 13u), m != 0u); }
  let e = exp - 112;
  if (e >= 0x1f) { return sign | 0x7c00u; }
  if (e >= 1) {
    var r = (u32(e) << 10u) | (m >> 13u);
    let rem = m & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u) != 0u)) { r = r + 1u; }
    return sign | r;
  }
  let shift = u32(14 - e);
  if (shift > 24u) { return sign; }
  let sig = m | 0x800000u;
  var r = sig >> shift;
  let rem = sig & ((1u << shift) - 1u);
  let half = 1u << (shift - 1u);
  if (rem > half || (rem == half && (r & 1u) != 0u)) { r = r + 1u; }
  return sign | r;
}

/** f32 bits -> bf16 bits, round to nearest even; any NaN -> 0x7fc0 (PyTorch). */
fn f32_bits_to_bf16(x: u32) -> u32 {
  if ((x & 0x7fffffffu) > 0x7f800000u) { return 0x7fc0u; }
  return (x + 0x7fffu + ((x >> 16u) & 1u)) >> 16u;
}

/** The 16 bits of element i from its word (the word holding elements 2w, 2w + 1). */
fn half_of(word: u32, i: u32) -> u32 {
  return select(word & 0xffffu, word >> 16u, (i & 1u) == 1u);
}

/** A 16-bit element's bits (dtype DT_F16 or DT_BF16) widened to f32 bits. */
fn widen_bits(h: u32, dtype: u32) -> u32 {
  return select(f16_to_f32_bits(h), h << 16u, dtype == DT_BF16);
}

/** f32 bits narrowed to a 16-bit dtype's bits. */
fn narrow_bits(x: u32, dtype: u32) -> u32 {
  return select(f32_bits_to_f16(x), f32_bits_to_bf16(x), dtype == DT_BF16);
}
