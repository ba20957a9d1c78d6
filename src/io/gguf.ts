// GGUF files (llama.cpp's model format, version 3): read the header (metadata and tensor list) and
// load one tensor at a time, dequantized to float32; write a file (atomically) from metadata and
// tensors already encoded in their ggml type. The header is read with positioned reads as it is
// parsed and every count, length, type and offset is checked against the file before it is used,
// so a truncated or hostile file is a GGUFError, never a crash, a huge allocation or an
// out-of-bounds read. Quantization itself lives in ./gguf_quants.ts; what goes into a model's file
// (names, metadata, tokenizer) in ./gguf_export.ts.
// Reference: ggml/docs/gguf.md; gguf-py/gguf/gguf_reader.py, gguf_writer.py; ggml/src/gguf.cpp.

import { open, type FileHandle } from "node:fs/promises";
import { writeFileAtomic } from "./atomic.ts";
import { dequantize, ggmlByteLength, ggmlTypeName, GGML_TYPES, KILN_TYPES, type GGMLTypeName, type KilnType } from "./gguf_quants.ts";

/** GGUF metadata value types (gguf.md GGUF_TYPE_*). */
export const GGUF_VALUE_TYPES = {
  u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, str: 8, array: 9, u64: 10, i64: 11, f64: 12,
} as const;
export type GGUFScalarType = Exclude<keyof typeof GGUF_VALUE_TYPES, "array">;

/** One metadata value with its GGUF type; arrays hold scalars of one type (u64/i64 as bigint). */
export type GGUFValue =
  | { type: Exclude<GGUFScalarType, "u64" | "i64" | "str" | "bool">; value: number }
  | { type: "u64" | "i64"; value: bigint }
  | { type: "str"; value: string }
  | { type: "bool"; value: boolean }
  | { type: "array"; itemType: GGUFScalarType; value: (number | bigint | string | boolean)[] };

/** A tensor as the header lists it. `shape` is PyTorch order (outermost first); GGUF stores it reversed (ne). */
export interface GGUFTensorInfo {
  name: string;
  shape: number[];
  type: GGMLTypeName;
  /** absolute offset of the first byte in the file */
  byteOffset: number;
  byteLength: number;
}

/** A tensor to write: `data` is already in `type`'s encoding (see quantize() in ./gguf_quants.ts). */
export interface GGUFTensor {
  name: string;
  /** PyTorch order (outermost first) */
  shape: readonly number[];
  type: GGMLTypeName;
  data: Uint8Array | (() => Uint8Array | Promise<Uint8Array>);
}

/** A malformed file, or a request the file cannot satisfy. */
export class GGUFError extends Error {
  constructor(readonly file: string, readonly problem: string) {
    super(`gguf: ${file}: ${problem}`);
    this.name = "GGUFError";
  }
}

const MAGIC = 0x46554747; // "GGUF" little-endian
const DEFAULT_ALIGNMENT = 32;
const MAX_DIMS = 4; // GGML_MAX_DIMS
const MAX_KEY_BYTES = 65535;
const VALUE_SIZES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
const TYPE_NAMES = Object.fromEntries(Object.entries(GGUF_VALUE_TYPES).map(([k, v]) => [v, k])) as Record<number, keyof typeof GGUF_VALUE_TYPES>;

/** Reads and validates the header of `path`; tensors are loaded later, one at a time. */
export async function readGguf(path: string): Promise<GGUFFile> {
  const handle = await open(path, "r");
  try {
    const size = (await handle.stat()).size;
    const r = new HeaderReader(handle, path, size);
    const magic = await r.u32();
    if (magic !== MAGIC) throw new GGUFError(path, `bad magic 0x${magic.toString(16).padStart(8, "0")} (a GGUF file starts with "GGUF")`);
    const version = await r.u32();
    if (version !== 2 && version !== 3) throw new GGUFError(path, `version ${version} is not supported (2 or 3)`);
    const tensorCount = await r.count("tensor count", 8 + 4 + 8); // name length, n_dims, a dim, type, offset at least
    const kvCount = await r.count("metadata count", 8 + 4 + 1);
    const metadata = new Map<string, GGUFValue>();
    for (let i = 0; i < kvCount; i++) {
      const key = await r.string("metadata key", MAX_KEY_BYTES);
      if (metadata.has(key)) throw new GGUFError(path, `duplicate metadata key ${JSON.stringify(key)}`);
      metadata.set(key, await r.value(key));
    }
    const alignValue = metadata.get("general.alignment");
    let alignment = DEFAULT_ALIGNMENT;
    if (alignValue) {
      if (alignValue.type !== "u32" || alignValue.value === 0 || (alignValue.value & (alignValue.value - 1)) !== 0) {
        throw new GGUFError(path, `general.alignment must be a u32 power of two, got ${JSON.stringify(String(alignValue.value))}`);
      }
      alignment = alignValue.value;
    }
    const raw: { name: string; shape: number[]; type: GGMLTypeName; offset: number; count: number }[] = [];
    const names = new Set<string>();
    for (let i = 0; i < tensorCount; i++) {
      const name = await r.string("tensor name", MAX_KEY_BYTES);
      if (names.has(name)) throw new GGUFError(path, `duplicate tensor name ${JSON.stringify(name)}`);
      names.add(name);
      const nDims = await r.u32();
      if (nDims > MAX_DIMS) throw new GGUFError(path, `tensor ${JSON.stringify(name)} has ${nDims} dimensions (at most ${MAX_DIMS})`);
      const ne: number[] = [];
      let count = 1;
      for (let d = 0; d < nDims; d++) {
        const dim = await r.u64();
        if (dim > BigInt(size) * 8n) throw new GGUFError(path, `tensor ${JSON.stringify(name)} dimension ${d} = ${dim} is larger than the file can hold`);
        ne.push(Number(dim));
        count *= Number(dim);
        if (count > size * 8) throw new GGUFError(path, `tensor ${JSON.stringify(name)} has more elements than the file can hold`);
      }
      const typeId = await r.u32();
      const type = ggmlTypeName(typeId);
      if (!type) throw new GGUFError(path, `tensor ${JSON.stringify(name)} has unknown ggml type ${typeId}`);
      const block = GGML_TYPES[type].block;
      if ((ne[0] ?? 1) % block !== 0) throw new GGUFError(path, `tensor ${JSON.stringify(name)}: row of ${ne[0]} is not a multiple of ${type}'s block of ${block}`);
      const offset = await r.u64();
      if (offset % BigInt(alignment) !== 0n) throw new GGUFError(path, `tensor ${JSON.stringify(name)} offset ${offset} is not a multiple of the alignment ${alignment}`);
      if (offset > BigInt(size)) throw new GGUFError(path, `tensor ${JSON.stringify(name)} offset ${offset} is past the end of the file (${size} bytes)`);
      raw.push({ name, shape: ne.slice().reverse(), type, offset: Number(offset), count });
    }
    const dataOffset = Math.ceil(r.position / alignment) * alignment;
    const tensors: GGUFTensorInfo[] = raw.map((t) => ({
      name: t.name, shape: t.shape, type: t.type, byteOffset: dataOffset + t.offset, byteLength: ggmlByteLength(t.type, t.count),
    }));
    const sorted = [...tensors].sort((a, b) => a.byteOffset - b.byteOffset);
    let end = dataOffset;
    for (const t of sorted) {
      if (t.byteOffset < end) throw new GGUFError(path, `tensor ${JSON.stringify(t.name)} overlaps the one before it`);
      end = t.byteOffset + t.byteLength;
      if (end > size) throw new GGUFError(path, `tensor ${JSON.stringify(t.name)} (${t.byteLength} bytes at ${t.byteOffset}) runs past the end of the file (${size} bytes): truncated?`);
    }
    return new GGUFFile(path, version, alignment, metadata, tensors);
  } finally {
    await handle.close();
  }
}

/** An opened GGUF file: its metadata and tensor list, and lazy loads by name. */
export class GGUFFile {
  readonly #byName: Map<string, GGUFTensorInfo>;
  constructor(
    readonly path: string,
    readonly version: number,
    readonly alignment: number,
    readonly metadata: ReadonlyMap<string, GGUFValue>,
    /** the tensors in header order */
    readonly tensors: readonly GGUFTensorInfo[],
  ) {
    this.#byName = new Map(tensors.map((t) => [t.name, t]));
  }

  /** The value of metadata `key` (bigints for u64/i64), or undefined. */
  get(key: string): GGUFValue["value"] | undefined {
    return this.metadata.get(key)?.value;
  }

  /** A metadata value that must be there and be a number (u8..u64, i8..i64, f32, f64). */
  number(key: string): number {
    const v = this.metadata.get(key);
    if (!v) throw new GGUFError(this.path, `metadata ${key} is missing`);
    if (v.type === "str" || v.type === "bool" || v.type === "array") throw new GGUFError(this.path, `metadata ${key} must be a number, got ${v.type}`);
    return Number(v.value);
  }

  /** A metadata value that must be there and be a string. */
  string(key: string): string {
    const v = this.metadata.get(key);
    if (!v || v.type !== "str") throw new GGUFError(this.path, v ? `metadata ${key} must be a string, got ${v.type}` : `metadata ${key} is missing`);
    return v.value;
  }

  has(name: string): boolean {
    return this.#byName.has(name);
  }

  info(name: string): GGUFTensorInfo {
    const info = this.#byName.get(name);
    if (!info) throw new GGUFError(this.path, `no tensor named ${JSON.stringify(name)}`);
    return info;
  }

  /** The tensor's bytes exactly as stored (in its ggml type's encoding). */
  async readBytes(name: string): Promise<Uint8Array> {
    const info = this.info(name);
    const handle = await open(this.path, "r");
    try {
      return await readExactly(handle, this.path, info.byteOffset, info.byteLength);
    } finally {
      await handle.close();
    }
  }

  /** The tensor as float32 (dequantized from F16, BF16, Q8_0, Q5_0, Q4_0, Q4_1, Q4_K, Q6_K; F32 as is). */
  async read(name: string): Promise<Float32Array> {
    const info = this.info(name);
    if (!(KILN_TYPES as readonly string[]).includes(info.type)) {
      throw new GGUFError(this.path, `tensor ${JSON.stringify(name)} is ${info.type}; kiln reads ${KILN_TYPES.join(", ")}`);
    }
    const count = info.shape.reduce((a, b) => a * b, 1);
    return dequantize(info.type as KilnType, await this.readBytes(name), count);
  }
}

/**
 * Writes a GGUF v3 file atomically: header (metadata in the given order, then tensor infos), then
 * each tensor's data at the next multiple of the alignment, as gguf-py's GGUFWriter lays it out.
 * Tensors whose `data` is a function are produced one at a time as they are written.
 */
export async function writeGguf(path: string, metadata: ReadonlyMap<string, GGUFValue>, tensors: readonly GGUFTensor[], alignment = DEFAULT_ALIGNMENT): Promise<void> {
  const fail = (problem: string): never => {
    throw new GGUFError(path, problem);
  };
  const w = new ByteWriter();
  w.u32(MAGIC);
  w.u32(3);
  w.u64(BigInt(tensors.length));
  w.u64(BigInt(metadata.size));
  for (const [key, value] of metadata) {
    w.string(key);
    w.value(value, key, fail);
  }
  let offset = 0;
  const sizes: number[] = [];
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) fail(`duplicate tensor name ${JSON.stringify(t.name)}`);
    names.add(t.name);
    const count = t.shape.reduce((a, b) => a * b, 1);
    const { block } = GGML_TYPES[t.type];
    if ((t.shape.at(-1) ?? 1) % block !== 0) fail(`tensor ${JSON.stringify(t.name)}: rows of ${t.shape.at(-1)} are not a multiple of ${t.type}'s block ${block}`);
    const bytes = ggmlByteLength(t.type, count);
    w.string(t.name);
    w.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) w.u64(BigInt(d));
    w.u32(GGML_TYPES[t.type].id);
    w.u64(BigInt(offset));
    sizes.push(bytes);
    offset += Math.ceil(bytes / alignment) * alignment;
  }
  const header = w.bytes();
  const pad = (n: number) => new Uint8Array(Math.ceil(n / alignment) * alignment - n);
  async function* chunks(): AsyncIterable<Uint8Array> {
    yield header;
    yield pad(header.length);
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i];
      const data = typeof t.data === "function" ? await t.data() : t.data;
      if (data.byteLength !== sizes[i]) fail(`tensor ${JSON.stringify(t.name)}: ${data.byteLength} bytes of data, ${t.type} ${JSON.stringify(t.shape)} takes ${sizes[i]}`);
      yield data;
      yield pad(data.byteLength);
    }
  }
  await writeFileAtomic(path, chunks());
}

/** Metadata builders: `u32(5)`, `str("llama")`, `arr("str", tokens)`. */
export const gguf = {
  u32: (value: number): GGUFValue => ({ type: "u32", value }),
  i32: (value: number): GGUFValue => ({ type: "i32", value }),
  f32: (value: number): GGUFValue => ({ type: "f32", value }),
  u64: (value: number | bigint): GGUFValue => ({ type: "u64", value: BigInt(value) }),
  bool: (value: boolean): GGUFValue => ({ type: "bool", value }),
  str: (value: string): GGUFValue => ({ type: "str", value }),
  arr: (itemType: GGUFScalarType, value: (number | string | boolean | bigint)[]): GGUFValue => ({ type: "array", itemType, value }),
};

// ---- reading -----------------------------------------------------------------------------------

/** Reads the header front to back through a window of the file, checking every length against the file size. */
class HeaderReader {
  position = 0;
  #buf: Uint8Array = new Uint8Array(0);
  #bufStart = 0;
  readonly #decoder = new TextDecoder("utf-8", { fatal: true });
  constructor(readonly handle: FileHandle, readonly path: string, readonly size: number) {}

  async #take(n: number, what: string): Promise<Uint8Array> {
    if (this.position + n > this.size) throw new GGUFError(this.path, `truncated: ${what} needs ${n} bytes at offset ${this.position}, the file has ${this.size}`);
    const rel = this.position - this.#bufStart;
    if (rel + n > this.#buf.length) {
      const want = Math.min(this.size - this.position, Math.max(n, 1 << 20));
      this.#buf = await readExactly(this.handle, this.path, this.position, want);
      this.#bufStart = this.position;
    }
    const at = this.position - this.#bufStart;
    this.position += n;
    return this.#buf.subarray(at, at + n);
  }

  async u32(): Promise<number> {
    const b = await this.#take(4, "a u32");
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
  }

  async u64(): Promise<bigint> {
    const b = await this.#take(8, "a u64");
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  }

  /** A u64 count whose items take at least `minItemBytes` each: more than the rest of the file can hold is refused. */
  async count(what: string, minItemBytes: number): Promise<number> {
    const n = await this.u64();
    const room = BigInt(Math.max(0, this.size - this.position));
    if (n * BigInt(minItemBytes) > room) throw new GGUFError(this.path, `${what} ${n} is more than the file's remaining ${room} bytes can hold`);
    return Number(n);
  }

  async string(what: string, maxBytes = Number.MAX_SAFE_INTEGER): Promise<string> {
    const n = await this.u64();
    if (n > BigInt(this.size - this.position)) throw new GGUFError(this.path, `${what} length ${n} at offset ${this.position - 8} runs past the end of the file`);
    if (n > BigInt(maxBytes)) throw new GGUFError(this.path, `${what} length ${n} exceeds ${maxBytes} bytes`);
    const bytes = await this.#take(Number(n), what);
    try {
      return this.#decoder.decode(bytes);
    } catch {
      throw new GGUFError(this.path, `${what} at offset ${this.position - Number(n)} is not UTF-8`);
    }
  }

  async value(key: string, typeId?: number): Promise<GGUFValue> {
    const tid = typeId ?? (await this.u32());
    const type = TYPE_NAMES[tid];
    if (type === undefined) throw new GGUFError(this.path, `metadata ${JSON.stringify(key)} has unknown value type ${tid}`);
    if (type === "str") return { type, value: await this.string(`metadata ${JSON.stringify(key)}`) };
    if (type === "array") {
      const itemId = await this.u32();
      const itemType = TYPE_NAMES[itemId];
      if (itemType === undefined || itemType === "array") throw new GGUFError(this.path, `metadata ${JSON.stringify(key)}: array of ${itemType ?? `unknown type ${itemId}`} is not supported`);
      const n = await this.count(`metadata ${JSON.stringify(key)} array length`, itemType === "str" ? 8 : VALUE_SIZES[itemId]);
      const value: (number | bigint | string | boolean)[] = new Array(n);
      for (let i = 0; i < n; i++) value[i] = (await this.value(key, itemId)).value as number | bigint | string | boolean;
      return { type, itemType, value };
    }
    const b = await this.#take(VALUE_SIZES[tid], `metadata ${JSON.stringify(key)}`);
    const v = new DataView(b.buffer, b.byteOffset, b.length);
    switch (type) {
      case "u8": return { type, value: v.getUint8(0) };
      case "i8": return { type, value: v.getInt8(0) };
      case "u16": return { type, value: v.getUint16(0, true) };
      case "i16": return { type, value: v.getInt16(0, true) };
      case "u32": return { type, value: v.getUint32(0, true) };
      case "i32": return { type, value: v.getInt32(0, true) };
      case "f32": return { type, value: v.getFloat32(0, true) };
      case "f64": return { type, value: v.getFloat64(0, true) };
      case "u64": return { type, value: v.getBigUint64(0, true) };
      case "i64": return { type, value: v.getBigInt64(0, true) };
      case "bool": {
        const x = v.getUint8(0);
        if (x > 1) throw new GGUFError(this.path, `metadata ${JSON.stringify(key)}: bool byte ${x} is not 0 or 1`);
        return { type, value: x === 1 };
      }
    }
  }
}

async function readExactly(handle: FileHandle, path: string, position: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(out, done, length - done, position + done);
    if (bytesRead === 0) throw new GGUFError(path, `truncated: wanted ${length} bytes at offset ${position}, the file ended after ${done}`);
    done += bytesRead;
  }
  return out;
}

// ---- writing -----------------------------------------------------------------------------------

class ByteWriter {
  #chunks: Uint8Array[] = [];
  #encoder = new TextEncoder();
  #scratch = new DataView(new ArrayBuffer(8));
  #push(n: number) {
    this.#chunks.push(new Uint8Array(this.#scratch.buffer.slice(0, n)));
  }
  u8(x: number) { this.#scratch.setUint8(0, x); this.#push(1); }
  u32(x: number) { this.#scratch.setUint32(0, x, true); this.#push(4); }
  u64(x: bigint) { this.#scratch.setBigUint64(0, x, true); this.#push(8); }
  string(s: string) {
    const b = this.#encoder.encode(s);
    this.u64(BigInt(b.length));
    this.#chunks.push(b);
  }
  scalar(type: GGUFScalarType, x: number | bigint | string | boolean, key: string, fail: (p: string) => never) {
    const d = this.#scratch;
    const bad = () => fail(`metadata ${key}: ${JSON.stringify(String(x))} is not a valid ${type}`);
    switch (type) {
      case "str": return typeof x === "string" ? this.string(x) : bad();
      case "bool": return typeof x === "boolean" ? this.u8(x ? 1 : 0) : bad();
      case "u64": case "i64":
        if (typeof x !== "bigint" && !Number.isInteger(x)) bad();
        type === "u64" ? d.setBigUint64(0, BigInt(x), true) : d.setBigInt64(0, BigInt(x), true);
        return this.#push(8);
    }
    if (typeof x !== "number") return bad();
    switch (type) {
      case "u8": d.setUint8(0, x); return this.#push(1);
      case "i8": d.setInt8(0, x); return this.#push(1);
      case "u16": d.setUint16(0, x, true); return this.#push(2);
      case "i16": d.setInt16(0, x, true); return this.#push(2);
      case "u32": if (!Number.isInteger(x) || x < 0 || x > 0xffffffff) bad(); d.setUint32(0, x, true); return this.#push(4);
      case "i32": if (!Number.isInteger(x) || x < -(2 ** 31) || x >= 2 ** 31) bad(); d.setInt32(0, x, true); return this.#push(4);
      case "f32": d.setFloat32(0, x, true); return this.#push(4);
      case "f64": d.setFloat64(0, x, true); return this.#push(8);
    }
  }
  value(v: GGUFValue, key: string, fail: (p: string) => never) {
    this.u32(GGUF_VALUE_TYPES[v.type]);
    if (v.type !== "array") return this.scalar(v.type, v.value, key, fail);
    this.u32(GGUF_VALUE_TYPES[v.itemType]);
    this.u64(BigInt(v.value.length));
    for (const x of v.value) this.scalar(v.itemType, x, key, fail);
  }
  bytes(): Uint8Array {
    const total = this.#chunks.reduce((a, c) => a + c.length, 0);
    const out = new Uint8Array(total);
    let at = 0;
    for (const c of this.#chunks) (out.set(c, at), (at += c.length));
    return out;
  }
}
