// cast: out[i] = x[i] from dtype src to dtype dst (codes 0 f32, 1 f16, 2 bf16: src/backend/kernels.ts
// CAST_DTYPES). Conversions on bit patterns (./half.ts), so NaN payloads and subnormals survive as
// the kernel list says. Reference: tests/reference.ts cast.
import { f16ToF32Bits, f32BitsToBf16, f32BitsToF16, widenHalf } from "./half";

const F32 = 0;
const F16 = 1;
const BF16 = 2;

/** Element i of x (dtype src) as f32 bits. */
@inline function readBits(x: usize, i: usize, src: i32): u32 {
  if (src == F32) return load<u32>(x + (i << 2));
  const h = <u32>load<u16>(x + (i << 1));
  return src == F16 ? f16ToF32Bits(h) : h << 16;
}

export function cast_f32(x: usize, out: usize, n: i32, src: i32, dst: i32): void {
  if (dst == F32) {
    if (src == F32) memory.copy(out, x, <usize>n << 2);
    else widenHalf(x, out, n, src == BF16);
    return;
  }
  for (let i = 0; i < n; i++) {
    const bits = readBits(x, <usize>i, src);
    store<u16>(out + (<usize>i << 1), <u16>(dst == F16 ? f32BitsToF16(bits) : f32BitsToBf16(bits)));
  }
  // a 16-bit buffer is whole 4-byte words: zero the upper half of an odd count's last word
  if (n & 1) store<u16>(out + (<usize>n << 1), 0);
}
