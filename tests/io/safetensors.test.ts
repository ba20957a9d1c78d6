// safetensors: round trips of every dtype, byte-exact agreement with the reference writer's layout,
// one test per hostile-file case, and a fuzz test: hundreds of mutated files must each either read
// cleanly with in-range data or fail with a SafetensorsError.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  encodeSafetensors,
  readSafetensors,
  SafetensorsError,
  type SafetensorsFile,
  writeSafetensors,
} from "../../src/io/safetensors.ts";

const dir = await mkdtemp(join(tmpdir(), "kiln-safetensors-"));
afterAll(() => rm(dir, { recursive: true, force: true }));

let fileCounter = 0;
async function fileWith(bytes: Uint8Array): Promise<string> {
  const path = join(dir, `f${fileCounter++}.safetensors`);
  await writeFile(path, bytes);
  return path;
}

/** A file from a header text (or bytes) and a data section, with the length field overridable. */
function craft(header: string | Uint8Array, data: Uint8Array | number = 0, length?: bigint): Uint8Array {
  const h = typeof header === "string" ? new TextEncoder().encode(header) : header;
  const d = typeof data === "number" ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

async function expectFileError(bytes: Uint8Array, fragment: string): Promise<void> {
  const path = await fileWith(bytes);
  const error = await readSafetensors(path).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SafetensorsError);
  expect((error as Error).message).toContain(path);
  expect((error as Error).message).toContain(fragment);
}

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

describe("safetensors round trip", () => {
  test("every dtype, metadata, empty and scalar tensors", async () => {
    const path = join(dir, "all.safetensors");
    const f32 = new Float32Array([1.5, -0, 1e-30, 3.5, -7, 0.1]);
    const f16Bits = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001]);
    const bf16Bits = new Uint16Array([0x3f80, 0x4049, 0xbf80, 0x0080]);
    const f64 = new Float64Array([0.1, 1e300, -2.5]);
    const i32 = new Int32Array([0, -1, 2147483647, -2147483648]);
    const i64 = new BigInt64Array([-1n, 2147483647n, -2147483648n]);
    await writeSafetensors(
      path,
      {
        "w.f32": { dtype: "F32", shape: [2, 3], data: f32 },
        "w.f16": { dtype: "F16", shape: [4], data: f16Bits },
        "w.bf16": { dtype: "BF16", shape: [2, 2], data: bf16Bits },
        "w.f64": { dtype: "F64", shape: [3], data: f64 },
        "i.i32": { dtype: "I32", shape: [2, 2], data: i32 },
        "i.i64": { dtype: "I64", shape: [3], data: i64 },
        empty: { dtype: "F32", shape: [0, 4], data: new Float32Array(0) },
        scalar: { dtype: "F32", shape: [], data: new Float32Array([42]) },
      },
      { format: "pt", note: "é" },
    );
    const file = await readSafetensors(path);
    expect(file.metadata).toEqual({ format: "pt", note: "é" });
    // the reference writer's order: I64, F64, F32, I32, BF16, F16; names ascending within a dtype
    expect(file.names()).toEqual(["i.i64", "w.f64", "empty", "scalar", "w.f32", "i.i32", "w.bf16", "w.f16"]);
    expect((8 + file.headerLength) % 8).toBe(0);
    expect(file.info("w.f32")).toEqual({ name: "w.f32", dtype: "F32", shape: [2, 3], byteOffset: file.info("w.f32").byteOffset, byteLength: 24 });
    const last = file.tensors[file.tensors.length - 1];
    expect(last.byteOffset + last.byteLength).toBe((await stat(path)).size);

    expect([...(await file.read("w.f32"))]).toEqual([...f32]);
    expect(Object.is((await file.read("w.f32"))[1], -0)).toBe(true);
    expect([...(await file.read("w.f16"))]).toEqual([1, -2, 65504, 2 ** -24]);
    expect([...(await file.read("w.bf16"))]).toEqual([1, 3.140625, -1, 2 ** -126]);
    expect([...(await file.read("w.f64"))]).toEqual([Math.fround(0.1), Infinity, -2.5]);
    expect([...(await file.readFloat64("w.f64"))]).toEqual([0.1, 1e300, -2.5]);
    expect([...(await file.readFloat64("w.f16"))]).toEqual([1, -2, 65504, 2 ** -24]);
    const ri32 = await file.read("i.i32");
    expect(ri32).toBeInstanceOf(Int32Array);
    expect([...ri32]).toEqual([...i32]);
    const ri64 = await file.read("i.i64");
    expect(ri64).toBeInstanceOf(Int32Array);
    expect([...ri64]).toEqual([-1, 2147483647, -2147483648]);
    expect((await file.read("empty")).length).toBe(0);
    expect([...(await file.read("scalar"))]).toEqual([42]);
    for (const [name, data] of [["w.f32", f32], ["w.f16", f16Bits], ["w.f64", f64], ["i.i64", i64]] as const) {
      expect(await file.readBytes(name)).toEqual(bytesOf(data));
    }
  });

  test("f32 data written as F16/BF16/F64/I64 is converted on write", async () => {
    const path = join(dir, "converted.safetensors");
    const x = new Float32Array([1 + 2 ** -11, 1 + 3 * 2 ** -11, 65520, 0.1]);
    await writeSafetensors(path, {
      h: { dtype: "F16", shape: [4], data: x },
      b: { dtype: "BF16", shape: [4], data: x },
      d: { dtype: "F64", shape: [4], data: x },
      l: { dtype: "I64", shape: [2], data: new Int32Array([-5, 7]) },
    });
    const file = await readSafetensors(path);
    expect([...(await file.read("h"))]).toEqual([1, 1 + 2 ** -9, Infinity, 0.0999755859375]);
    expect([...(await file.read("b"))]).toEqual([1, 1, 65536, 0.10009765625]);
    expect([...(await file.readFloat64("d"))]).toEqual([...x]);
    expect(await file.readBytes("l")).toEqual(bytesOf(new BigInt64Array([-5n, 7n])));
  });

  test("byte layout matches the reference writer's (huggingface/safetensors test vectors)", () => {
    const data = new Float32Array([0, 1, 2, 3, 4, 5]);
    const a = concat(encodeSafetensors({ "attn.0": { dtype: "F32", shape: [1, 2, 3], data } }));
    const headerA = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
    expect(headerA.length).toBe(64);
    expect(a).toEqual(concat([craft(headerA), bytesOf(data)]));

    const b = concat(encodeSafetensors({ attn0: { dtype: "F32", shape: [1, 1, 2, 3], data } }));
    const headerB = '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}' + " ".repeat(7);
    expect(headerB.length).toBe(72);
    expect(b).toEqual(concat([craft(headerB), bytesOf(data)]));

    expect(concat(encodeSafetensors({}))).toEqual(new Uint8Array([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]));
    expect(concat(encodeSafetensors({}, { framework: "pt" }))).toEqual(craft('{"__metadata__":{"framework":"pt"}}' + " ".repeat(5)));
  });

  test("names sort by UTF-8 bytes, as the reference writer's Rust string order", async () => {
    const t = { dtype: "F32" as const, shape: [1], data: new Float32Array([0]) };
    const chunks = encodeSafetensors({ "\u{1F600}": t, "\uFF21": t, b: t, B: t });
    const header = new TextDecoder().decode(chunks[1]);
    const order = Object.keys(JSON.parse(header));
    expect(order).toEqual(["B", "b", "\uFF21", "\u{1F600}"]); // UTF-16 order would put U+1F600 before U+FF21
  });

  test("the writer rejects mismatched data", () => {
    expect(() => encodeSafetensors({ x: { dtype: "F32", shape: [3], data: new Float32Array(2) } })).toThrow(SafetensorsError);
    expect(() => encodeSafetensors({ x: { dtype: "I32", shape: [2], data: new Float32Array(2) } })).toThrow("cannot hold I32");
    expect(() => encodeSafetensors({ x: { dtype: "U8" as "F32", shape: [2], data: new Uint8Array(2) } })).toThrow("cannot write dtype U8");
    expect(() => encodeSafetensors({ __metadata__: { dtype: "F32", shape: [], data: new Float32Array(1) } })).toThrow("reserved");
    expect(() => encodeSafetensors({ x: { dtype: "F32", shape: [-1], data: new Float32Array(0) } })).toThrow("bad shape dim");
  });
});

describe("safetensors streaming write", () => {
  test("producers are called one at a time, in file order, and give the same bytes as eager data", async () => {
    const a = Float32Array.from({ length: 6 }, (_, i) => i * 0.5), b = Float32Array.of(-1, 2), c = Int32Array.of(7, 8, 9);
    const eager = { b: { dtype: "F32" as const, shape: [2], data: b }, a: { dtype: "F32" as const, shape: [2, 3], data: a }, c: { dtype: "I32" as const, shape: [3], data: c } };
    const calls: string[] = [];
    let open = 0, maxOpen = 0;
    const lazy = (name: string, data: Float32Array | Int32Array) => async () => {
      calls.push(name);
      maxOpen = Math.max(maxOpen, ++open);
      await Bun.sleep(1);
      queueMicrotask(() => open--);
      return data;
    };
    const path = join(dir, "lazy.safetensors");
    await writeSafetensors(path, {
      b: { dtype: "F32", shape: [2], data: lazy("b", b) },
      a: { dtype: "F32", shape: [2, 3], data: lazy("a", a) },
      c: { dtype: "I32", shape: [3], data: lazy("c", c) },
    }, { format: "pt" });
    expect(calls).toEqual(["a", "b", "c"]); // the file's order: F32 by name, then I32
    expect(maxOpen).toBe(1);
    const written = new Uint8Array(await Bun.file(path).arrayBuffer());
    expect(Array.from(written)).toEqual(Array.from(concat(encodeSafetensors(eager, { format: "pt" }))));
  });

  test("a producer with the wrong byte count fails, naming the tensor, and leaves the old file", async () => {
    const path = join(dir, "lazy-bad.safetensors");
    await writeSafetensors(path, { x: { dtype: "F32", shape: [1], data: Float32Array.of(3) } });
    const before = new Uint8Array(await Bun.file(path).arrayBuffer());
    const error = await writeSafetensors(path, { x: { dtype: "F32", shape: [4], data: async () => new Float32Array(3) } }).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(SafetensorsError);
    expect((error as Error).message).toContain('tensor "x"');
    expect(new Uint8Array(await Bun.file(path).arrayBuffer())).toEqual(before);
    expect(() => encodeSafetensors({ x: { dtype: "F32", shape: [1], data: async () => new Float32Array(1) } })).toThrow("needs the data itself");
  });
});

describe("safetensors hostile files", () => {
  const ok = (name = "t") => `"${name}":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}`;

  test("file shorter than 8 bytes", async () => {
    await expectFileError(new Uint8Array(5), "shorter than the 8-byte header length");
  });
  test("header length past the end of the file", async () => {
    await expectFileError(craft(`{${ok()}}`, 8, 1000n), "runs past the end of the file");
  });
  test("header length over 100 MB", async () => {
    await expectFileError(craft("{}", 0, 100_000_001n), "exceeds the 100000000-byte limit");
    await expectFileError(craft("{}", 0, 0xffffffffffffffffn), "exceeds");
  });
  test("header that is not UTF-8", async () => {
    await expectFileError(craft(new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])), "not valid UTF-8");
  });
  test("header that is not JSON", async () => {
    await expectFileError(craft('{"t": {"dtype": "F32",'), "not valid JSON");
    await expectFileError(craft("{}}"), "not valid JSON");
  });
  test("header that is not an object", async () => {
    await expectFileError(craft("[]"), "not a JSON object");
    await expectFileError(craft(' {"x":1}'), "not a JSON object");
    await expectFileError(craft(""), "not a JSON object");
  });
  test("entry missing dtype, shape or data_offsets", async () => {
    await expectFileError(craft('{"t":{"shape":[2],"data_offsets":[0,8]}}', 8), 'tensor "t": missing "dtype"');
    await expectFileError(craft('{"t":{"dtype":"F32","data_offsets":[0,8]}}', 8), 'missing "shape"');
    await expectFileError(craft('{"t":{"dtype":"F32","shape":[2]}}', 8), 'missing "data_offsets"');
    await expectFileError(craft('{"t":7}', 0), "entry is not an object");
  });
  test("negative or non-integer shape dims", async () => {
    await expectFileError(craft('{"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', 8), "shape dim -2");
    await expectFileError(craft('{"t":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}', 8), "shape dim 2.5");
    await expectFileError(craft('{"t":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}', 8), 'shape dim "2"');
    await expectFileError(craft('{"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}', 8), "too large");
  });
  test("byte count differs from shape x dtype size", async () => {
    await expectFileError(craft('{"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', 8), "span 8 bytes but F32 [3] needs 12");
  });
  test("offsets out of range, reversed, or not integers", async () => {
    await expectFileError(craft('{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', 4), "run past the end of the data");
    await expectFileError(craft('{"t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}', 8), "reversed");
    await expectFileError(craft('{"t":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}', 8), "data offset -8");
    await expectFileError(craft('{"t":{"dtype":"F32","shape":[2],"data_offsets":[0]}}', 8), "[begin, end] pair");
  });
  test("overlapping tensors", async () => {
    const h = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}';
    await expectFileError(craft(h, 12), 'tensor "b" overlaps tensor "a"');
  });
  test("holes: a gap between tensors, or bytes after the last one", async () => {
    const h = '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}';
    await expectFileError(craft(h, 12), '4 unused bytes before tensor "b"');
    await expectFileError(craft(`{${ok()}}`, 9), "1 unused bytes after the last tensor");
    await expectFileError(craft('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', 8), '4 unused bytes before tensor "a"');
  });
  test("duplicate names (JSON duplicate keys)", async () => {
    await expectFileError(craft(`{${ok()},${ok()}}`, 8), 'duplicate key "t"');
    await expectFileError(craft(`{${ok("t")},"\\u0074":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 8), 'duplicate key "t"');
    await expectFileError(craft('{"t":{"dtype":"F32","dtype":"F16","shape":[2],"data_offsets":[0,8]}}', 8), 'duplicate key "dtype"');
  });
  test("unknown dtype", async () => {
    await expectFileError(craft('{"t":{"dtype":"F128","shape":[2],"data_offsets":[0,8]}}', 8), 'unknown dtype "F128"');
    await expectFileError(craft('{"t":{"dtype":"toString","shape":[2],"data_offsets":[0,8]}}', 8), 'unknown dtype "toString"');
  });
  test("metadata that is not a map of strings", async () => {
    await expectFileError(craft('{"__metadata__":{"a":1}}'), '"__metadata__" value for "a" is not a string');
    await expectFileError(craft('{"__metadata__":[1]}'), '"__metadata__" is not an object');
  });
  test("I64 values outside int32 fail on read(), naming the tensor", async () => {
    const file = await readSafetensors(await fileWith(concat(encodeSafetensors({ big: { dtype: "I64", shape: [2], data: new BigInt64Array([1n, 1n << 40n]) } }))));
    await expect(file.read("big")).rejects.toThrow('tensor "big" (I64) element 1 = 1099511627776 does not fit in int32');
  });
  test("a known dtype read() does not convert: clear error, raw bytes still readable", async () => {
    const file = await readSafetensors(await fileWith(craft('{"m":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}}', new Uint8Array([1, 2, 3]))));
    await expect(file.read("m")).rejects.toThrow("has dtype U8, which read() does not convert");
    expect([...(await file.readBytes("m"))]).toEqual([1, 2, 3]);
  });
  test("unknown tensor name, and a file truncated after it was opened", async () => {
    const path = await fileWith(concat(encodeSafetensors({ t: { dtype: "F32", shape: [4], data: new Float32Array(4) } })));
    const file = await readSafetensors(path);
    await expect(file.read("nope")).rejects.toThrow(SafetensorsError);
    await truncate(path, file.fileSize - 3);
    await expect(file.read("t")).rejects.toThrow("changed since it was opened");
  });
});

describe("safetensors fuzz", () => {
  test("600 mutated files: each reads cleanly with in-range data or throws SafetensorsError", async () => {
    const valid = concat(
      encodeSafetensors(
        {
          "a.weight": { dtype: "F32", shape: [3, 5], data: new Float32Array(15).map((_, i) => i - 7) },
          "a.bias": { dtype: "F16", shape: [5], data: new Uint16Array([0x3c00, 1, 2, 0x7bff, 0xc000]) },
          b: { dtype: "BF16", shape: [2, 2], data: new Uint16Array([0x3f80, 0, 0x4049, 0xbf80]) },
          c: { dtype: "F64", shape: [3], data: new Float64Array([0.5, -1, 2]) },
          idx: { dtype: "I32", shape: [2, 3], data: new Int32Array([0, 1, 2, 3, 4, 64]) },
          pos: { dtype: "I64", shape: [4], data: new BigInt64Array([0n, 1n, 2n, 3n]) },
          none: { dtype: "F32", shape: [0], data: new Float32Array(0) },
        },
        { format: "pt" },
      ),
    );
    const headerEnd = 8 + Number(new DataView(valid.buffer).getBigUint64(0, true));
    let seed = 12345;
    const rand = () => {
      seed = (seed + 0x6d2b79f5) | 0; // mulberry32
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const below = (n: number) => Math.floor(rand() * n);
    const setLength = (b: Uint8Array, n: bigint) => new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, n), true);

    let succeeded = 0;
    let rejected = 0;
    for (let iter = 0; iter < 600; iter++) {
      let bytes: Uint8Array = valid.slice();
      const kind = iter % 7;
      if (kind === 0) {
        for (let k = 1 + below(4); k > 0; k--) bytes[8 + below(headerEnd - 8)] ^= 1 << below(8); // bit flips in the header
      } else if (kind === 1) {
        for (let k = 1 + below(4); k > 0; k--) bytes[below(bytes.length)] = below(256); // random bytes anywhere
      } else if (kind === 2) {
        bytes = bytes.slice(0, below(bytes.length)); // truncation
      } else if (kind === 3) {
        const choices = [BigInt(headerEnd - 8 + below(17) - 8), BigInt(below(bytes.length + 16)), BigInt(Math.floor(rand() * 2 ** 53)) * 4096n, -1n];
        setLength(bytes, choices[below(choices.length)]); // header-length edits
      } else if (kind === 4) {
        const digits: number[] = []; // change one digit of a number in the header (shape dims, offsets)
        for (let i = 8; i < headerEnd; i++) if (bytes[i] >= 0x30 && bytes[i] <= 0x39) digits.push(i);
        bytes[digits[below(digits.length)]] = 0x30 + below(10);
      } else if (kind === 5) {
        const at = 8 + below(headerEnd - 8); // delete or insert a header byte, keeping or fixing the length
        const inserted = rand() < 0.5;
        const edited = new Uint8Array(bytes.length + (inserted ? 1 : -1));
        edited.set(bytes.subarray(0, at));
        if (inserted) {
          edited[at] = [0x22, 0x2c, 0x7b, 0x7d, 0x5b, 0x5d, 0x3a, 0x30, 0x20][below(9)];
          edited.set(bytes.subarray(at), at + 1);
        } else {
          edited.set(bytes.subarray(at + 1), at);
        }
        if (rand() < 0.5) setLength(edited, BigInt(headerEnd - 8 + (inserted ? 1 : -1)));
        bytes = edited;
      } else {
        bytes = concat([bytes, new Uint8Array(1 + below(9))]); // trailing junk
      }

      const path = join(dir, "fuzz.safetensors");
      await writeFile(path, bytes);
      let file: SafetensorsFile | null = null;
      try {
        file = await readSafetensors(path);
        for (const info of file.tensors) {
          expect(info.byteOffset).toBeGreaterThanOrEqual(8 + file.headerLength);
          expect(info.byteOffset + info.byteLength).toBeLessThanOrEqual(bytes.length);
          expect((await file.readBytes(info.name)).length).toBe(info.byteLength);
          const count = info.shape.reduce((a, b) => a * b, 1);
          try {
            expect((await file.read(info.name)).length).toBe(count);
          } catch (e) {
            if (!(e instanceof SafetensorsError)) throw e; // e.g. a dtype mutated to U8, or I64 out of range
          }
        }
        succeeded++;
      } catch (e) {
        if (!(e instanceof SafetensorsError)) throw new Error(`iteration ${iter} (kind ${kind}) threw ${String(e)}`);
        rejected++;
      }
    }
    expect(succeeded + rejected).toBe(600);
    expect(rejected).toBeGreaterThan(300);
    expect(succeeded).toBeGreaterThan(10);
  });
});
