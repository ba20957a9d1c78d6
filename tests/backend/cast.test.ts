// Conformance of cast (f32 <-> f16 <-> bf16) on every backend against the float64 oracle
// (tests/reference.ts cast, which rounds with plain arithmetic): every 16-bit pattern widened, f32
// values narrowed across the whole range (ties both ways, overflow edges, subnormals, NaN
// payloads), the bits PyTorch gives for NaN and -0, and an odd count's last word.
import { describe, expect, test } from "bun:test";
import type { Backend } from "../../src/backend/backend.ts";
import { CAST_DTYPES } from "../../src/backend/kernels.ts";
import { bufferBytes } from "../../src/tensor/dtype.ts";
import { REFERENCE } from "../reference.ts";
import { backendNames, getBackend } from "../backends.ts";
import { rng, seedOf } from "./harness.ts";

type Dt = (typeof CAST_DTYPES)[number];
const code = (d: Dt) => CAST_DTYPES.indexOf(d);

/** The value of 16-bit pattern h, by the formats' definitions (not the backends' bit tricks). */
function decode(h: number, dt: "f16" | "bf16"): number {
  const [eBits, mBits, bias] = dt === "f16" ? [5, 10, 15] : [8, 7, 127];
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> mBits) & ((1 << eBits) - 1);
  const m = h & ((1 << mBits) - 1);
  if (e === (1 << eBits) - 1) return m ? NaN : sign * Infinity;
  if (e === 0) return sign * m * 2 ** (1 - bias - mBits);
  return sign * (1 + m / 2 ** mBits) * 2 ** (e - bias);
}

/** Runs cast on the backend; returns the out words' raw bytes (the whole buffer). */
async function runCast(backend: Backend, input: Float32Array | Uint16Array, n: number, src: Dt, dst: Dt): Promise<ArrayBuffer> {
  const x = backend.alloc(bufferBytes(n, src));
  const out = backend.alloc(bufferBytes(n, dst));
  try {
    backend.upload(x, input);
    backend.upload(out, new Uint32Array(bufferBytes(n, dst) / 4).fill(0xffffffff)); // unwritten words show
    backend.run("cast", [x], [out], { n, src: code(src), dst: code(dst) });
    return await backend.download(out, bufferBytes(n, dst));
  } finally {
    backend.free(x);
    backend.free(out);
  }
}

/** The values of n elements of dtype dt in bytes. */
function valuesOf(bytes: ArrayBuffer, n: number, dt: Dt): Float64Array {
  if (dt === "f32") return Float64Array.from(new Float32Array(bytes, 0, n));
  const h = new Uint16Array(bytes, 0, n);
  return Float64Array.from(h, (v) => decode(v, dt));
}

function expectSameValues(got: Float64Array, want: Float64Array, inputs: Float64Array, what: string): void {
  const bad: string[] = [];
  for (let i = 0; i < want.length; i++) {
    const ok = Number.isNaN(want[i]) ? Number.isNaN(got[i]) : Object.is(got[i], want[i]);
    if (!ok && bad.length < 5) bad.push(`[${i}] ${inputs[i]} -> ${got[i]}, want ${want[i]}`);
  }
  expect(bad, what).toEqual([]);
}

/** f32 inputs that probe every rounding case of both 16-bit formats. */
function f32Inputs(seed: number): Float32Array {
  const bits: number[] = [];
  const r = rng(seed);
  for (let i = 0; i < 4000; i++) bits.push(Math.floor(r() * 2 ** 32)); // every exponent, NaNs and infs included
  for (let i = 0; i < 2000; i++) {
    // values in f16's range (2^-26 .. 2^17) and their exact ties
    const e = 101 + Math.floor(r() * 43);
    const m = Math.floor(r() * 2 ** 23);
    const s = r() < 0.5 ? 0x80000000 : 0;
    bits.push((s | (e << 23) | m) >>> 0);
    bits.push((s | (e << 23) | (m & ~0x1fff) | 0x1000) >>> 0); // f16 normal tie
    bits.push((s | (e << 23) | (m & ~0xffff) | 0x8000) >>> 0); // bf16 tie
  }
  for (const s of [0, 0x80000000]) {
    for (const b of [0, 1, 0x7fffff, 0x800000, 0x7f800000, 0x7f800001, 0x7fc00000, 0x7fa00000, 0x7f7fffff, 0x7f7f8000, 0x7f7f7fff, 0x7f7fc000, 0x33000000, 0x33000001, 0x33800000, 0x387fe000, 0x38800000]) {
      bits.push((s | b) >>> 0);
    }
  }
  const out = new Float32Array(new Uint32Array(bits).buffer);
  const extra = [65504, 65519.99, 65520, 65536, 6.1035156e-5, 5.9604645e-8, 2.9802322e-8, 2.9802326e-8, 1, -1, 0.1, 1 / 3];
  return Float32Array.from([...out, ...extra]);
}

describe.each(backendNames)("cast on %s", (name) => {
  for (const dt of ["f16", "bf16"] as const) {
    test(`every ${dt} pattern widens to f32 exactly`, async () => {
      const backend = await getBackend(name);
      const n = 65536;
      const input = new Uint16Array(n).map((_, i) => i);
      const got = valuesOf(await runCast(backend, input, n, dt, "f32"), n, "f32");
      const values = Float64Array.from(input, (h) => decode(h, dt));
      const [want] = REFERENCE.cast([values], { n, src: code(dt), dst: 0 });
      expectSameValues(got, want, values, `${dt} -> f32`);
    });

    test(`f32 narrows to ${dt}: nearest even, overflow, subnormals, NaN`, async () => {
      const backend = await getBackend(name);
      const input = f32Inputs(seedOf("cast", dt));
      const n = input.length;
      const bytes = await runCast(backend, input, n, "f32", dt);
      const values = Float64Array.from(input);
      const [want] = REFERENCE.cast([values], { n, src: 0, dst: code(dt) });
      expectSameValues(valuesOf(bytes, n, dt), want, values, `f32 -> ${dt}`);
      // bits the values do not show: NaN and the sign of zero
      const h = new Uint16Array(bytes, 0, n);
      for (let i = 0; i < n; i++) {
        if (Number.isNaN(input[i])) {
          if (dt === "bf16") expect(h[i]).toBe(0x7fc0); // PyTorch's canonical NaN
          else expect(h[i] & 0x8000).toBe(new Uint32Array(input.buffer, i * 4, 1)[0] >>> 31 ? 0x8000 : 0);
        }
      }
    });
  }

  test("f16 <-> bf16 go through f32 with one rounding", async () => {
    const backend = await getBackend(name);
    const n = 65536;
    const input = new Uint16Array(n).map((_, i) => i);
    for (const [src, dst] of [["f16", "bf16"], ["bf16", "f16"]] as const) {
      const values = Float64Array.from(input, (h) => decode(h, src));
      const got = valuesOf(await runCast(backend, input, n, src, dst), n, dst);
      const [want] = REFERENCE.cast([values], { n, src: code(src), dst: code(dst) });
      expectSameValues(got, want, values, `${src} -> ${dst}`);
    }
  });

  test("an odd count writes its last word's low half and zeroes the upper one", async () => {
    const backend = await getBackend(name);
    for (const n of [1, 3, 1001]) {
      for (const dt of ["f16", "bf16"] as const) {
        const input = Float32Array.from({ length: n }, (_, i) => 1 + (i % 7)); // exact in both formats
        const words = new Uint32Array(await runCast(backend, input, n, "f32", dt));
        expect(words.length).toBe(Math.ceil(n / 2));
        const last = words[words.length - 1];
        expect(last >>> 16).toBe(0);
        expect(decode(last & 0xffff, dt)).toBe(1 + ((n - 1) % 7));
      }
    }
  });
});
