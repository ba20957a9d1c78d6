// GGUF files without llama.cpp: the writer's byte layout (checked by hand against gguf.md), round
// trips of every metadata type and tensor type, the quantizers' block layouts on hand-computed
// blocks and their error bounds, the converter's fallbacks, one test per hostile-file case, and a
// fuzz test: hundreds of mutated files must each either read cleanly or throw GGUFError.
// (llama.cpp's own reading of kiln's files is tests/interop/.)

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gguf, GGUFError, readGguf, writeGguf, type GGUFTensor, type GGUFValue } from "../../src/io/gguf.ts";
import { dequantize, quantize, KILN_TYPES, type KilnType } from "../../src/io/gguf_quants.ts";
import { tensorType } from "../../src/io/gguf_export.ts";

const dir = await mkdtemp(join(tmpdir(), "kiln-gguf-"));
afterAll(() => rm(dir, { recursive: true, force: true }));

let seed = 7;
function rand(): number {
  seed = (seed + 0x6d2b79f5) | 0; // mulberry32
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const randn = (n: number, scale = 1) => Float32Array.from({ length: n }, () => scale * Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand()));

describe("gguf writer layout", () => {
  test("header bytes follow gguf.md: magic, version 3, counts, kv, tensor info, aligned data", async () => {
    const path = join(dir, "layout.gguf");
    await writeGguf(path, new Map([["general.architecture", gguf.str("ab")]]), [
      { name: "t", shape: [2, 3], type: "F32", data: new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer) },
    ]);
    const b = new Uint8Array(await readFile(path));
    const expected: number[] = [];
    const u32 = (x: number) => expected.push(x & 255, (x >> 8) & 255, (x >> 16) & 255, (x >>> 24) & 255);
    const u64 = (x: number) => (u32(x), u32(0));
    const str = (s: string) => (u64(s.length), expected.push(...[...s].map((c) => c.charCodeAt(0))));
    expected.push(0x47, 0x47, 0x55, 0x46); // "GGUF"
    u32(3);
    u64(1); // tensors
    u64(1); // kv
    str("general.architecture");
    u32(8); // string
    str("ab");
    str("t");
    u32(2); // n_dims
    u64(3); // ne[0] = columns
    u64(2);
    u32(0); // F32
    u64(0); // offset in the data section
    const dataStart = Math.ceil(expected.length / 32) * 32;
    expect(Array.from(b.subarray(0, expected.length))).toEqual(expected);
    expect(Array.from(b.subarray(expected.length, dataStart))).toEqual(new Array(dataStart - expected.length).fill(0));
    expect(Array.from(new Float32Array(b.slice(dataStart, dataStart + 24).buffer))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(b.length).toBe(dataStart + 32); // the last tensor is padded too, as gguf-py writes it
  });

  test("every metadata type and every kiln tensor type round-trips", async () => {
    const metadata = new Map<string, GGUFValue>([
      ["u8", { type: "u8", value: 255 }], ["i8", { type: "i8", value: -128 }], ["u16", { type: "u16", value: 65535 }],
      ["i16", { type: "i16", value: -32768 }], ["u32", gguf.u32(4294967295)], ["i32", gguf.i32(-5)], ["f32", gguf.f32(0.5)],
      ["f64", { type: "f64", value: Math.PI }], ["u64", gguf.u64(2n ** 63n)], ["i64", { type: "i64", value: -(2n ** 40n) }],
      ["bool", gguf.bool(true)], ["str", gguf.str("héllo ✓")], ["strs", gguf.arr("str", ["a", "", "ü"])], ["ints", gguf.arr("i32", [1, -2, 3])],
      ["empty", gguf.arr("f32", [])],
    ]);
    const x = randn(2 * 256);
    const tensors: GGUFTensor[] = KILN_TYPES.map((type) => ({ name: `w.${type}`, shape: [2, 256], type, data: quantize(type, x, 256) }));
    tensors.push({ name: "scalar", shape: [], type: "F32", data: new Uint8Array(new Float32Array([7]).buffer) });
    const path = join(dir, "roundtrip.gguf");
    await writeGguf(path, metadata, tensors);
    const file = await readGguf(path);
    expect(file.version).toBe(3);
    expect([...file.metadata.keys()]).toEqual([...metadata.keys()]);
    for (const [k, v] of metadata) expect(file.metadata.get(k)).toEqual(v.type === "f32" ? { ...v, value: Math.fround(v.value as number) } : v);
    for (const t of tensors) {
      const info = file.info(t.name);
      expect(info.shape).toEqual([...t.shape]);
      expect(info.byteOffset % 32).toBe(0);
      expect(await file.readBytes(t.name)).toEqual(t.data as Uint8Array);
    }
    expect(Array.from(await file.read("w.F32"))).toEqual(Array.from(x));
    expect(Array.from(await file.read("scalar"))).toEqual([7]);
  });

  test("the writer refuses data of the wrong size, duplicate names and rows the block does not divide", async () => {
    const path = join(dir, "bad.gguf");
    const md = new Map<string, GGUFValue>();
    await expect(writeGguf(path, md, [{ name: "a", shape: [4], type: "F32", data: new Uint8Array(12) }])).rejects.toThrow(/12 bytes of data.*takes 16/);
    await expect(writeGguf(path, md, [{ name: "a", shape: [1], type: "F32", data: new Uint8Array(4) }, { name: "a", shape: [1], type: "F32", data: new Uint8Array(4) }])).rejects.toThrow(/duplicate tensor name/);
    await expect(writeGguf(path, md, [{ name: "a", shape: [2, 48], type: "Q4_0", data: new Uint8Array(0) }])).rejects.toThrow(/not a multiple of Q4_0's block 32/);
    await expect(writeGguf(path, new Map([["k", gguf.u32(-1)]]), [])).rejects.toThrow(/metadata k: "-1" is not a valid u32/);
  });
});

describe("gguf quantizers", () => {
  test("Q8_0 block by hand: d = amax/127 as f16, q = round(x/d)", () => {
    const x = Float32Array.from({ length: 32 }, (_, j) => (j - 16) / 4); // amax 4 at j = 0
    const b = quantize("Q8_0", x, 32);
    expect(b.length).toBe(34);
    const d = new DataView(b.buffer).getUint16(0, true);
    expect(d).toBe(0x2808); // f16(4/127 = 0.031496) = 2^-5 · (1 + 8/1024)
    const q = Array.from(new Int8Array(b.buffer, 2, 32));
    expect(q[0]).toBe(-127);
    expect(q[16]).toBe(0);
    expect(q[18]).toBe(Math.round((0.5 * 127) / 4)); // 15.875 -> 16
  });

  test("Q4_0 block by hand: d = max/-8 (signed max), nibbles low half first", () => {
    const x = new Float32Array(32);
    x[0] = -8; // the largest magnitude, negative: d = 1
    x[1] = 3;
    x[16] = 2.4;
    const b = quantize("Q4_0", x, 32);
    expect(new DataView(b.buffer).getUint16(0, true)).toBe(0x3c00); // f16(1)
    // q = min(15, (int8)(x/d + 8.5)): x0 = -8 -> 0, x1 = 3 -> 11, x16 = 2.4 -> 10 (high nibble of byte 0), zeros -> 8
    expect(b[2]).toBe(0 | (10 << 4));
    expect(b[3]).toBe(11 | (8 << 4));
    expect(b[4]).toBe(8 | (8 << 4));
    expect(Array.from(dequantize("Q4_0", b, 32).subarray(0, 2))).toEqual([-8, 3]);
  });

  test("Q4_1 block by hand: d = (max-min)/15, m = min", () => {
    const x = Float32Array.from({ length: 32 }, (_, j) => j / 2); // min 0, max 15.5
    const b = quantize("Q4_1", x, 32);
    const dq = dequantize("Q4_1", b, 32);
    expect(dq[0]).toBe(0);
    expect(Math.abs(dq[31] - 15.5)).toBeLessThan(0.01);
    for (let j = 0; j < 32; j++) expect(Math.abs(dq[j] - x[j])).toBeLessThanOrEqual(15.5 / 15 / 2 + 0.01);
  });

  // worst error per element, as a fraction of the block's largest magnitude amax: half a step of the
  // type's grid (plus the f16 rounding of its scales), except where the grid is asymmetric: Q4_0's
  // and Q5_0's scale maps the signed max to -8 (-16), so the other end clamps a whole step short
  // (1/8, 1/16 of amax); Q4_1's step is (max - min)/15 <= 2·amax/15; k-quants' 6/8-bit scales add a little
  const bounds: Record<KilnType, number> = { F32: 0, F16: 1e-3, BF16: 4e-3, Q8_0: 0.5 / 127 + 1e-3, Q5_0: 1 / 16 + 1e-3, Q4_0: 1 / 8 + 1e-3, Q4_1: 1 / 15 + 2e-3, Q4_K: 0.09, Q6_K: 0.02 };
  for (const type of KILN_TYPES) {
    test(`${type}: dequantize(quantize(x)) within its grid's step of x; zero blocks stay zero`, () => {
      const x = randn(4 * 256);
      x.fill(0, 256, 512); // an all-zero super-block
      const dq = dequantize(type, quantize(type, x, 256), x.length);
      const block = type.endsWith("_K") ? 256 : 32;
      for (let b = 0; b < x.length / block; b++) {
        let amax = 0;
        for (let j = 0; j < block; j++) amax = Math.max(amax, Math.abs(x[b * block + j]));
        for (let j = 0; j < block; j++) expect(Math.abs(dq[b * block + j] - x[b * block + j])).toBeLessThanOrEqual(bounds[type] * amax + 1e-7);
      }
      expect(Array.from(dq.subarray(256, 512)).every((v) => v === 0)).toBe(true);
    });
  }

  test("rows the block does not divide fall back as llama.cpp's tools do; 1-D tensors stay F32", () => {
    expect(tensorType("q4_0", [64])).toEqual({ type: "F32" });
    expect(tensorType("q8_0", [10, 64]).type).toBe("Q8_0");
    expect(tensorType("q8_0", [10, 48]).type).toBe("F16"); // convert_hf_to_gguf: QuantError -> F16
    expect(tensorType("q4_1", [10, 40]).type).toBe("F16");
    expect(tensorType("q4_k", [10, 64]).type).toBe("Q5_0"); // llama-quantize: Q4_K -> Q5_0
    expect(tensorType("q6_k", [10, 96]).type).toBe("Q8_0"); // Q6_K -> Q8_0
    expect(tensorType("q6_k", [10, 40]).type).toBe("F16"); // ... -> F16 when 32 does not divide either
    expect(tensorType("q6_k", [10, 512]).type).toBe("Q6_K");
    expect(tensorType("bf16", [10, 7]).type).toBe("BF16");
  });
});

/** A small valid file: metadata of several types, tensors of several ggml types. */
async function validFile(): Promise<Uint8Array> {
  const path = join(dir, "valid.gguf");
  const x = randn(256);
  await writeGguf(path, new Map<string, GGUFValue>([
    ["general.architecture", gguf.str("llama")], ["n", gguf.u32(3)], ["eps", gguf.f32(1e-5)], ["tokens", gguf.arr("str", ["a", "b", "<s>"])],
    ["flag", gguf.bool(false)],
  ]), [
    { name: "a", shape: [2, 32], type: "Q8_0", data: quantize("Q8_0", x.subarray(0, 64), 32) },
    { name: "b", shape: [256], type: "Q4_K", data: quantize("Q4_K", x, 256) },
    { name: "c", shape: [3], type: "F32", data: new Uint8Array(new Float32Array([1, 2, 3]).buffer) },
    { name: "d", shape: [2, 2], type: "F16", data: new Uint8Array(8) },
  ]);
  return new Uint8Array(await readFile(path));
}

/** Offsets of the fields of validFile's header, found by parsing it the way the spec lays it out. */
function fields(b: Uint8Array) {
  const v = new DataView(b.buffer, b.byteOffset);
  let at = 24;
  const kv: number[] = [];
  const skipValue = (t: number): void => {
    const sizes: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
    if (t === 8) at += 8 + Number(v.getBigUint64(at, true));
    else if (t === 9) {
      const it = v.getUint32(at, true);
      const n = Number(v.getBigUint64(at + 4, true));
      at += 12;
      for (let i = 0; i < n; i++) skipValue(it);
    } else at += sizes[t];
  };
  for (let i = 0; i < 5; i++) {
    kv.push(at);
    at += 8 + Number(v.getBigUint64(at, true));
    const t = v.getUint32(at, true);
    at += 4;
    skipValue(t);
  }
  const tensors: { name: number; nDims: number; type: number; offset: number }[] = [];
  for (let i = 0; i < 4; i++) {
    const name = at;
    at += 8 + Number(v.getBigUint64(at, true));
    const nDims = at;
    at += 4 + 8 * v.getUint32(at, true);
    tensors.push({ name, nDims, type: at, offset: at + 4 });
    at += 12;
  }
  return { kv, tensors, end: at };
}

describe("gguf hostile files", () => {
  const expectRefused = async (bytes: Uint8Array, message: RegExp) => {
    const path = join(dir, "hostile.gguf");
    await writeFile(path, bytes);
    const err = await readGguf(path).then(() => null, (e) => e);
    expect(err).toBeInstanceOf(GGUFError);
    expect(String(err.message)).toMatch(message);
  };
  const edit = (b: Uint8Array, fn: (v: DataView) => void) => {
    const c = b.slice();
    fn(new DataView(c.buffer));
    return c;
  };

  test("bad magic, unsupported version", async () => {
    const b = await validFile();
    await expectRefused(edit(b, (v) => v.setUint32(0, 0x46554746, true)), /bad magic 0x46554746/);
    await expectRefused(new TextEncoder().encode("{\"not\": \"gguf\"}"), /bad magic/);
    await expectRefused(edit(b, (v) => v.setUint32(4, 4, true)), /version 4 is not supported/);
  });

  test("truncated anywhere: in the header, in the tensor infos, in the data", async () => {
    const b = await validFile();
    const { end } = fields(b);
    for (const n of [0, 3, 7, 20, 30, end - 3, end + 40, b.length - 30]) await expectRefused(b.slice(0, n), /truncated|past the end|runs past|more than the file/);
  });

  test("huge counts: tensors, metadata, array lengths, string lengths", async () => {
    const b = await validFile();
    const { kv } = fields(b);
    await expectRefused(edit(b, (v) => v.setBigUint64(8, 2n ** 62n, true)), /tensor count 4611686018427387904 is more than/);
    await expectRefused(edit(b, (v) => v.setBigUint64(16, 10n ** 12n, true)), /metadata count 1000000000000 is more than/);
    await expectRefused(edit(b, (v) => v.setBigUint64(kv[0], 2n ** 63n, true)), /metadata key length 9223372036854775808 .* runs past the end/);
    // "tokens": key (8 + 6 bytes), type, item type, then the array length
    await expectRefused(edit(b, (v) => v.setBigUint64(kv[3] + 14 + 4 + 4, 2n ** 40n, true)), /array length 1099511627776 is more than/);
  });

  test("bad tensor infos: offsets misaligned, past the end, overlapping; unknown types; too many dims; huge dims", async () => {
    const b = await validFile();
    const { tensors } = fields(b);
    const [a, bb] = tensors;
    await expectRefused(edit(b, (v) => v.setBigUint64(a.offset, 8n, true)), /offset 8 is not a multiple of the alignment 32/);
    await expectRefused(edit(b, (v) => v.setBigUint64(a.offset, 2n ** 50n, true)), /offset .* past the end of the file/);
    await expectRefused(edit(b, (v) => v.setBigUint64(bb.offset, 0n, true)), /overlaps/);
    await expectRefused(edit(b, (v) => v.setUint32(a.type, 99, true)), /unknown ggml type 99/);
    await expectRefused(edit(b, (v) => v.setUint32(a.type, 4, true)), /unknown ggml type 4/); // Q4_2, removed from ggml
    await expectRefused(edit(b, (v) => v.setUint32(a.nDims, 9, true)), /9 dimensions \(at most 4\)/);
    await expectRefused(edit(b, (v) => v.setBigUint64(a.nDims + 4, 2n ** 60n, true)), /larger than the file can hold/);
    await expectRefused(edit(b, (v) => v.setBigUint64(a.nDims + 4, 48n, true)), /row of 48 is not a multiple of Q8_0's block of 32/);
  });

  test("bad metadata: unknown value type, bool byte 2, invalid UTF-8, duplicate key, bad alignment", async () => {
    const b = await validFile();
    const { kv } = fields(b);
    const nKey = kv[1]; // "n": u32
    await expectRefused(edit(b, (v) => v.setUint32(nKey + 9, 13, true)), /unknown value type 13/);
    const flag = kv[4]; // "flag": bool
    await expectRefused(edit(b, (v) => v.setUint8(flag + 12 + 4, 2)), /bool byte 2/);
    await expectRefused(edit(b, (v) => v.setUint8(nKey + 8, 0xff)), /not UTF-8/);
    const path = join(dir, "dup.gguf");
    await writeGguf(path, new Map([["ab", gguf.u32(1)], ["ac", gguf.u32(2)]]), []);
    const dup = new Uint8Array(await readFile(path));
    dup[24 + 8 + 2 + 4 + 4 + 8 + 1] = "b".charCodeAt(0); // the second key "ac" -> "ab"
    await expectRefused(dup, /duplicate metadata key "ab"/);
    await writeGguf(path, new Map([["general.alignment", gguf.u32(24)]]), []);
    await expect(readGguf(path)).rejects.toThrow(/general.alignment must be a u32 power of two/);
  });

  test("unknown tensor names and types kiln does not dequantize are clear errors on read", async () => {
    const path = join(dir, "iq.gguf");
    await writeGguf(path, new Map(), [{ name: "q", shape: [256], type: "IQ4_XS", data: new Uint8Array(136) }]);
    const file = await readGguf(path);
    expect(file.info("q").type).toBe("IQ4_XS");
    await expect(file.read("q")).rejects.toThrow(/tensor "q" is IQ4_XS; kiln reads F32, F16/);
    expect(() => file.info("nope")).toThrow(/no tensor named "nope"/);
  });
});

describe("gguf fuzz", () => {
  test("600 mutated files: each reads cleanly with in-range data or throws GGUFError", async () => {
    const valid = await validFile();
    const { end } = fields(valid);
    let succeeded = 0;
    let rejected = 0;
    for (let iter = 0; iter < 600; iter++) {
      let bytes = valid.slice();
      const kind = iter % 5;
      const below = (n: number) => Math.floor(rand() * n);
      if (kind === 0) for (let k = 1 + below(4); k > 0; k--) bytes[below(end)] ^= 1 << below(8); // bit flips in the header
      else if (kind === 1) for (let k = 1 + below(4); k > 0; k--) bytes[below(bytes.length)] = below(256);
      else if (kind === 2) bytes = bytes.slice(0, below(bytes.length)); // truncation
      else if (kind === 3) {
        const at = 8 + 8 * below(2) + (rand() < 0.5 ? 0 : below(end - 16)); // a u64 anywhere (counts, lengths, dims, offsets)
        new DataView(bytes.buffer).setBigUint64(Math.min(at, end - 8), BigInt(Math.floor(rand() * 2 ** 53)) * (rand() < 0.5 ? 1n : 4096n), true);
      } else {
        const at = below(end); // delete a header byte
        bytes = new Uint8Array([...bytes.subarray(0, at), ...bytes.subarray(at + 1)]);
      }
      const path = join(dir, "fuzz.gguf");
      await writeFile(path, bytes);
      try {
        const file = await readGguf(path);
        for (const info of file.tensors) {
          expect(info.byteOffset + info.byteLength).toBeLessThanOrEqual(bytes.length);
          expect((await file.readBytes(info.name)).length).toBe(info.byteLength);
          try {
            expect((await file.read(info.name)).length).toBe(info.shape.reduce((a, b) => a * b, 1));
          } catch (e) {
            if (!(e instanceof GGUFError)) throw e; // a type mutated to one kiln does not dequantize
          }
        }
        succeeded++;
      } catch (e) {
        if (!(e instanceof GGUFError)) throw new Error(`iteration ${iter} (kind ${kind}) threw ${String(e)}`);
        rejected++;
      }
    }
    expect(succeeded + rejected).toBe(600);
    expect(rejected).toBeGreaterThan(100);
    expect(succeeded).toBeGreaterThan(10);
  });
});
