// f16 / bf16 <-> f32 conversions: hand-computed values, round-to-nearest-even edges, and an
// exhaustive check of all 65536 bit patterns against a float64 formula.

import { describe, expect, test } from "bun:test";
import {
  bf16ArrayToF32,
  bf16ToF32,
  f16ArrayToF32,
  f16ToF32,
  f32ArrayToBf16,
  f32ArrayToF16,
  f32ToBf16,
  f32ToF16,
} from "../../src/tensor/half.ts";

const P = (e: number) => 2 ** e;

describe("f16", () => {
  test("bits -> f32, hand-computed values", () => {
    const cases: [number, number][] = [
      [0x0000, 0], [0x3c00, 1], [0xc000, -2], [0x3800, 0.5], [0x7bff, 65504],
      [0x0400, P(-14)], [0x0001, P(-24)], [0x03ff, 1023 * P(-24)], [0x8001, -P(-24)],
      [0x3555, 0.333251953125], [0x4248, 3.140625], [0x2e66, 0.0999755859375],
      [0x7c00, Infinity], [0xfc00, -Infinity],
    ];
    for (const [bits, value] of cases) expect(f16ToF32(bits)).toBe(value);
    expect(Object.is(f16ToF32(0x8000), -0)).toBe(true);
    expect(f16ToF32(0x7e00)).toBeNaN();
    expect(f16ToF32(0x7c01)).toBeNaN();
  });

  test("f32 -> bits rounds to nearest, ties to even", () => {
    const cases: [number, number][] = [
      [1, 0x3c00], [-2, 0xc000], [0.1, 0x2e66], [65504, 0x7bff],
      [1 + P(-11), 0x3c00], // tie, stays even
      [1 + 3 * P(-11), 0x3c02], // tie, rounds up to even
      [1 + P(-11) + P(-20), 0x3c01], // just above the tie
      [65519, 0x7bff], [65520, 0x7c00], [1e6, 0x7c00], [-1e6, 0xfc00],
      [P(-24), 0x0001], [P(-25), 0x0000], [P(-25) * (1 + P(-23)), 0x0001], [3 * P(-25), 0x0002],
      [P(-14) - P(-25), 0x0400], // rounds up out of the subnormals into the smallest normal
      [1e-9, 0x0000], [-1e-9, 0x8000], [-0, 0x8000],
      [Infinity, 0x7c00], [-Infinity, 0xfc00],
    ];
    for (const [value, bits] of cases) expect(f32ToF16(value)).toBe(bits);
    expect(f32ToF16(NaN) & 0x7fff).toBe(0x7e00);
  });

  test("every bit pattern: widening matches the float64 formula and narrowing inverts it", () => {
    const bits = new Uint16Array(65536).map((_, i) => i);
    const wide = f16ArrayToF32(bits);
    const back = f32ArrayToF16(wide);
    for (let h = 0; h < 65536; h++) {
      const sign = h & 0x8000 ? -1 : 1;
      const e = (h >> 10) & 0x1f;
      const m = h & 0x3ff;
      const want = e === 0x1f ? (m ? NaN : sign * Infinity) : e === 0 ? sign * m * P(-24) : sign * (1 + m / 1024) * P(e - 15);
      if (Number.isNaN(want)) {
        expect(wide[h]).toBeNaN();
        expect(back[h] & 0x7c00).toBe(0x7c00);
        continue;
      }
      if (wide[h] !== want || back[h] !== h) throw new Error(`f16 0x${h.toString(16)}: ${wide[h]} vs ${want}, back 0x${back[h].toString(16)}`);
    }
  });
});

describe("bf16", () => {
  test("bits -> f32, hand-computed values", () => {
    const cases: [number, number][] = [
      [0x3f80, 1], [0xbf80, -1], [0x4049, 3.140625], [0x7f7f, 3.3895313892515355e38],
      [0x0080, P(-126)], [0x0001, P(-133)], [0x7f80, Infinity], [0xff80, -Infinity],
    ];
    for (const [bits, value] of cases) expect(bf16ToF32(bits)).toBe(value);
    expect(bf16ToF32(0x7fc0)).toBeNaN();
  });

  test("f32 -> bits rounds to nearest, ties to even", () => {
    const cases: [number, number][] = [
      [1, 0x3f80], [Math.PI, 0x4049], [-1, 0xbf80],
      [1 + P(-8), 0x3f80], // tie, stays even
      [1 + 3 * P(-8), 0x3f82], // tie, rounds up to even
      [1 + P(-8) + P(-20), 0x3f81],
      [3.4028234663852886e38, 0x7f80], // f32 max rounds to inf
      [Infinity, 0x7f80], [-Infinity, 0xff80], [-0, 0x8000],
    ];
    for (const [value, bits] of cases) expect(f32ToBf16(value)).toBe(bits);
    expect(f32ToBf16(NaN) & 0x7fc0).toBe(0x7fc0);
  });

  test("every bit pattern round-trips", () => {
    const bits = new Uint16Array(65536).map((_, i) => i);
    const wide = bf16ArrayToF32(bits);
    const back = f32ArrayToBf16(wide);
    const u32 = new Uint32Array(wide.buffer);
    for (let h = 0; h < 65536; h++) {
      if (u32[h] !== h << 16 >>> 0) throw new Error(`bf16 0x${h.toString(16)} widened wrong`);
      const isNaN = (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;
      if (isNaN ? (back[h] & 0x7fc0) !== 0x7fc0 : back[h] !== h) throw new Error(`bf16 0x${h.toString(16)} -> 0x${back[h].toString(16)}`);
    }
  });
});
