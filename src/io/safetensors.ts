// safetensors files: read the header, list the tensors, load one tensor at a time by name; write
// a file (atomically). The file is never read whole into memory: the header is read once, and each
// tensor is one positioned read of its byte range. Every number in the header is checked before it
// is used, so a truncated or hostile file is a SafetensorsError, never a crash or an out-of-bounds
// read. Not a tensor library: values come back as typed arrays. Pure TS over node:fs (Bun, Deno).
// Reference: the format and its validation rules as in huggingface/safetensors (README, tensor.rs).

import { open } from "node:fs/promises";
import { writeFileAtomic } from "./atomic.ts";
import { bf16ArrayToF32, f16ArrayToF32, f32ArrayToBf16, f32ArrayToF16 } from "../tensor/half.ts";

/** The dtypes kiln reads into typed arrays and writes. */
export type SafetensorsDType = "F32" | "F16" | "BF16" | "F64" | "I32" | "I64";

/** One tensor as listed in the header. `dtype` is the file's word ("F32", "BF16", "U8", ...). */
export interface SafetensorsTensorInfo {
  name: string;
  dtype: string;
  shape: number[];
  /** Absolute offset of the first byte in the file (8 + header length + data_offsets[0]). */
  byteOffset: number;
  byteLength: number;
}

/** A tensor to write. `data` may be the natural typed array, or raw little-endian bytes (Uint8Array):
 *  F32: Float32Array · F64: Float64Array or Float32Array (widened) · F16/BF16: Uint16Array (bits) or
 *  Float32Array (rounded to nearest even) · I32: Int32Array · I64: BigInt64Array or Int32Array. */
export interface SafetensorsTensor {
  dtype: SafetensorsDType;
  shape: readonly number[];
  /** the data, or (writeSafetensors only) a function that produces it when its turn comes, so a
   *  file of many tensors is written holding one of them in memory at a time */
  data: SafetensorsData | (() => Promise<SafetensorsData>);
}
export type SafetensorsData = Float32Array | Float64Array | Uint16Array | Int32Array | BigInt64Array | Uint8Array;

/** A malformed file, or a request the file cannot satisfy. `file` is the path, `problem` the reason. */
export class SafetensorsError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`safetensors: ${file}: ${problem}`);
    this.name = "SafetensorsError";
  }
}

/** The spec's limit on the JSON header (bytes). */
export const MAX_HEADER_BYTES = 100_000_000;

/** Bytes per element of every dtype the format defines (sub-byte dtypes F4/F6_* are not supported). */
const DTYPE_SIZES: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, F8_E8M0: 1, I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8, C64: 8,
};

/** The reference writer's order: larger-alignment dtypes first (its Dtype enum, descending). */
const WRITE_RANK: Record<SafetensorsDType, number> = { I64: 0, F64: 1, F32: 2, I32: 3, BF16: 4, F16: 5 };

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Reads and validates the header of `path`; tensors are loaded later, one at a time. */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  const handle = await open(path, "r");
  try {
    const fileSize = (await handle.stat()).size;
    if (fileSize < 8) throw new SafetensorsError(path, `file is ${fileSize} bytes, shorter than the 8-byte header length`);
    const lengthBytes = await readExactly(handle, path, 0, 8);
    const headerLength = new DataView(lengthBytes.buffer).getBigUint64(0, true);
    if (headerLength > BigInt(MAX_HEADER_BYTES)) {
      throw new SafetensorsError(path, `header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
    }
    const n = Number(headerLength);
    if (8 + n > fileSize) {
      throw new SafetensorsError(path, `header length ${n} runs past the end of the file (${fileSize} bytes)`);
    }
    const headerBytes = await readExactly(handle, path, 8, n);
    const header = parseHeader(path, headerBytes, fileSize - 8 - n);
    return new SafetensorsFile(path, fileSize, n, header.metadata, header.tensors);
  } finally {
    await handle.close();
  }
}

/** An opened safetensors file: its metadata and tensor list, and lazy loads by name. */
export class SafetensorsFile {
  readonly #byName: Map<string, SafetensorsTensorInfo>;

  constructor(
    readonly path: string,
    readonly fileSize: number,
    readonly headerLength: number,
    /** `__metadata__` (empty when the file has none). */
    readonly metadata: Readonly<Record<string, string>>,
    /** The tensors in file order. */
    readonly tensors: readonly SafetensorsTensorInfo[],
  ) {
    this.#byName = new Map(tensors.map((t) => [t.name, t]));
  }

  names(): string[] {
    return this.tensors.map((t) => t.name);
  }

  has(name: string): boolean {
    return this.#byName.has(name);
  }

  info(name: string): SafetensorsTensorInfo {
    const info = this.#byName.get(name);
    if (!info) throw new SafetensorsError(this.path, `no tensor named ${JSON.stringify(name)}`);
    return info;
  }

  /** The tensor's raw little-endian bytes, exactly as stored. */
  async readBytes(name: string): Promise<Uint8Array> {
    const info = this.info(name);
    if (info.byteLength === 0) return new Uint8Array(0);
    const handle = await open(this.path, "r");
    try {
      return await readExactly(handle, this.path, info.byteOffset, info.byteLength);
    } finally {
      await handle.close();
    }
  }

  /** Loads a tensor: F32/F16/BF16/F64 as Float32Array (F64 rounded), I32/I64 as Int32Array (I64 range-checked). */
  async read(name: string): Promise<Float32Array | Int32Array> {
    const info = this.info(name);
    const count = info.byteLength / DTYPE_SIZES[info.dtype];
    switch (info.dtype) {
      case "F32":
        return new Float32Array((await this.#readAligned(name)).buffer, 0, count);
      case "F16":
        return f16ArrayToF32(new Uint16Array((await this.#readAligned(name)).buffer, 0, count));
      case "BF16":
        return bf16ArrayToF32(new Uint16Array((await this.#readAligned(name)).buffer, 0, count));
      case "F64":
        return Float32Array.from(new Float64Array((await this.#readAligned(name)).buffer, 0, count));
      case "I32":
        return new Int32Array((await this.#readAligned(name)).buffer, 0, count);
      case "I64":
        return this.#narrowI64(info, new Int32Array((await this.#readAligned(name)).buffer, 0, 2 * count));
      default:
        throw new SafetensorsError(this.path, `tensor ${JSON.stringify(name)} has dtype ${info.dtype}, which read() does not convert (F32, F16, BF16, F64, I32, I64); use readBytes()`);
    }
  }

  /** Loads a float tensor (F64, F32, F16, BF16) as Float64Array, exactly. */
  async readFloat64(name: string): Promise<Float64Array> {
    const info = this.info(name);
    if (info.dtype === "F64") {
      return new Float64Array((await this.#readAligned(name)).buffer, 0, info.byteLength / 8);
    }
    if (info.dtype === "F32" || info.dtype === "F16" || info.dtype === "BF16") {
      return Float64Array.from(await this.read(name));
    }
    throw new SafetensorsError(this.path, `tensor ${JSON.stringify(name)} has dtype ${info.dtype}; readFloat64() takes F64, F32, F16 or BF16`);
  }

  /** Bytes in a fresh buffer at offset 0, so any typed-array view over it is aligned. */
  async #readAligned(name: string): Promise<Uint8Array> {
    if (!LITTLE_ENDIAN) throw new SafetensorsError(this.path, "reading on a big-endian host is not supported");
    return this.readBytes(name);
  }

  #narrowI64(info: SafetensorsTensorInfo, words: Int32Array): Int32Array {
    const out = new Int32Array(words.length / 2);
    for (let i = 0; i < out.length; i++) {
      const lo = words[2 * i];
      const hi = words[2 * i + 1];
      if (hi !== lo >> 31) {
        const value = (BigInt(hi) << 32n) | BigInt(lo >>> 0);
        throw new SafetensorsError(this.path, `tensor ${JSON.stringify(info.name)} (I64) element ${i} = ${value} does not fit in int32`);
      }
      out[i] = lo;
    }
    return out;
  }
}

/**
 * Writes `tensors` (and optional string metadata) to `path` atomically, laid out as the reference
 * writer does. Tensors whose `data` is a function are produced one at a time as they are written.
 */
export async function writeSafetensors(
  path: string,
  tensors: Readonly<Record<string, SafetensorsTensor>>,
  metadata?: Readonly<Record<string, string>>,
): Promise<void> {
  const { header, entries } = layout(tensors, metadata, path);
  const fail = (problem: string): never => {
    throw new SafetensorsError(path, problem);
  };
  async function* chunks(): AsyncIterable<Uint8Array> {
    yield* header;
    for (const e of entries) {
      const data = typeof e.tensor.data === "function" ? await e.tensor.data() : e.tensor.data;
      yield tensorBytes(e.name, { ...e.tensor, data }, fail);
    }
  }
  await writeFileAtomic(path, chunks());
}

/** The file's bytes as chunks: [8-byte length, padded header, tensor data...]. Tensor data is not copied when it can be viewed. */
export function encodeSafetensors(
  tensors: Readonly<Record<string, SafetensorsTensor>>,
  metadata?: Readonly<Record<string, string>>,
  label = "<memory>",
): Uint8Array[] {
  const fail = (problem: string): never => {
    throw new SafetensorsError(label, problem);
  };
  const { header, entries } = layout(tensors, metadata, label);
  return [...header, ...entries.map((e) => {
    const data = e.tensor.data;
    if (typeof data === "function") fail(`tensor ${JSON.stringify(e.name)}: encodeSafetensors needs the data itself (writeSafetensors takes a producer)`);
    return tensorBytes(e.name, e.tensor as SafetensorsTensor & { data: SafetensorsData }, fail);
  })];
}

/** Checks names, dtypes and shapes, orders the tensors as the reference writer does, and encodes the header. */
function layout(
  tensors: Readonly<Record<string, SafetensorsTensor>>,
  metadata: Readonly<Record<string, string>> | undefined,
  label: string,
): { header: Uint8Array[]; entries: { name: string; tensor: SafetensorsTensor; byteLength: number }[] } {
  if (!LITTLE_ENDIAN) throw new SafetensorsError(label, "writing on a big-endian host is not supported");
  const fail = (problem: string): never => {
    throw new SafetensorsError(label, problem);
  };
  const entries = Object.entries(tensors).map(([name, t]) => {
    if (name === "__metadata__") fail(`"__metadata__" is reserved and cannot name a tensor`);
    if (!(t.dtype in WRITE_RANK)) fail(`tensor ${JSON.stringify(name)}: cannot write dtype ${String(t.dtype)} (F32, F16, BF16, F64, I32, I64)`);
    for (const d of t.shape) if (!Number.isSafeInteger(d) || d < 0) fail(`tensor ${JSON.stringify(name)}: bad shape dim ${d}`);
    const count = elementCount([...t.shape]) ?? fail(`tensor ${JSON.stringify(name)}: shape too large`);
    return { name, tensor: t, byteLength: count * DTYPE_SIZES[t.dtype] };
  });
  entries.sort((a, b) => WRITE_RANK[a.tensor.dtype] - WRITE_RANK[b.tensor.dtype] || compareUtf8(a.name, b.name));

  const parts: string[] = [];
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== "string") fail(`metadata ${JSON.stringify(k)} is not a string`);
    parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  }
  let offset = 0;
  for (const e of entries) {
    const end = offset + e.byteLength;
    parts.push(`${JSON.stringify(e.name)}:{"dtype":"${e.tensor.dtype}","shape":[${e.tensor.shape.join(",")}],"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  const json = new TextEncoder().encode(`{${parts.join(",")}}`);
  const padded = new Uint8Array(Math.ceil(json.byteLength / 8) * 8).fill(0x20); // spaces: 8-byte alignment
  padded.set(json);
  const length = new Uint8Array(8);
  new DataView(length.buffer).setBigUint64(0, BigInt(padded.byteLength), true);
  return { header: [length, padded], entries };
}

// ---------------------------------------------------------------------------------------------
// Header parsing: every check the format asks for, each with its own message.

interface ParsedHeader {
  metadata: Record<string, string>;
  tensors: SafetensorsTensorInfo[];
}

function parseHeader(path: string, bytes: Uint8Array, dataSize: number): ParsedHeader {
  const fail = (problem: string): never => {
    throw new SafetensorsError(path, problem);
  };
  if (bytes.byteLength === 0 || bytes[0] !== 0x7b) fail(`header is not a JSON object (it must begin with "{")`);
  let text = "";
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    fail("header is not valid UTF-8");
  }
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (e) {
    fail(`header is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (typeof root !== "object" || root === null || Array.isArray(root)) fail("header is not a JSON object");
  const duplicate = findDuplicateKey(text);
  if (duplicate !== null) fail(`header has duplicate key ${JSON.stringify(duplicate)}`);

  const metadata: Record<string, string> = {};
  const tensors: SafetensorsTensorInfo[] = [];
  const headerEnd = 8 + bytes.byteLength;
  for (const [name, entry] of Object.entries(root as Record<string, unknown>)) {
    const where = `tensor ${JSON.stringify(name)}`;
    if (name === "__metadata__") {
      if (entry === null) continue;
      if (typeof entry !== "object" || Array.isArray(entry)) fail(`"__metadata__" is not an object of strings`);
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`"__metadata__" value for ${JSON.stringify(k)} is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) fail(`${where}: entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
    if (dtype === undefined) fail(`${where}: missing "dtype"`);
    if (shape === undefined) fail(`${where}: missing "shape"`);
    if (offsets === undefined) fail(`${where}: missing "data_offsets"`);
    if (typeof dtype !== "string") fail(`${where}: "dtype" is not a string`);
    const size = Object.hasOwn(DTYPE_SIZES, dtype as string) ? DTYPE_SIZES[dtype as string] : fail(`${where}: unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape)) fail(`${where}: "shape" is not an array`);
    const dims = shape as unknown[];
    for (const d of dims) {
      if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) fail(`${where}: shape dim ${JSON.stringify(d)} is not a non-negative integer`);
    }
    const count = elementCount(dims as number[]) ?? fail(`${where}: shape [${dims.join(", ")}] is too large`);
    if (!Array.isArray(offsets) || offsets.length !== 2) fail(`${where}: "data_offsets" is not a [begin, end] pair`);
    const [begin, end] = offsets as unknown[];
    for (const o of [begin, end]) {
      if (typeof o !== "number" || !Number.isSafeInteger(o) || o < 0) fail(`${where}: data offset ${JSON.stringify(o)} is not a non-negative integer`);
    }
    const b = begin as number;
    const e = end as number;
    if (e < b) fail(`${where}: data_offsets [${b}, ${e}] are reversed`);
    if (e > dataSize) fail(`${where}: data_offsets [${b}, ${e}] run past the end of the data (${dataSize} bytes)`);
    if (e - b !== count * size) {
      fail(`${where}: data_offsets span ${e - b} bytes but ${dtype} [${dims.join(", ")}] needs ${count * size}`);
    }
    tensors.push({ name, dtype: dtype as string, shape: dims as number[], byteOffset: headerEnd + b, byteLength: e - b });
  }

  // The data section must be tiled exactly: sorted by offset, no overlap, no hole, ending at EOF.
  tensors.sort((x, y) => x.byteOffset - y.byteOffset || x.byteLength - y.byteLength);
  let expected = headerEnd;
  let previous: string | null = null;
  for (const t of tensors) {
    if (t.byteOffset < expected) fail(`tensor ${JSON.stringify(t.name)} overlaps tensor ${JSON.stringify(previous)}`);
    if (t.byteOffset > expected) fail(`${t.byteOffset - expected} unused bytes before tensor ${JSON.stringify(t.name)} (the format forbids holes)`);
    expected = t.byteOffset + t.byteLength;
    previous = t.name;
  }
  if (expected !== headerEnd + dataSize) fail(`${headerEnd + dataSize - expected} unused bytes after the last tensor (the format forbids holes)`);
  return { metadata, tensors };
}

/** Product of dims, or null past 2^53. */
function elementCount(dims: number[]): number | null {
  if (dims.includes(0)) return 0;
  let n = 1;
  for (const d of dims) {
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER) return null;
  }
  return n;
}

/** JSON.parse keeps the last of duplicate keys silently; this finds the first duplicate in any object.
 *  Runs on text JSON.parse has accepted, so it only tracks strings, nesting and which token is a key. */
function findDuplicateKey(text: string): string | null {
  const stack: (Set<string> | null)[] = []; // a Set per open object, null per open array
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c ? 2 : 1;
      const keys = stack[stack.length - 1];
      if (expectKey && keys) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (keys.has(key)) return key;
        keys.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b) {
      stack.push(new Set());
      expectKey = true;
    } else if (c === 0x5b) {
      stack.push(null);
      expectKey = false;
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c) {
      expectKey = stack[stack.length - 1] != null;
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Reading and writing bytes.

type Handle = Awaited<ReturnType<typeof open>>;

/** Reads exactly `length` bytes at `position` into a fresh buffer; a short read is a SafetensorsError. */
async function readExactly(handle: Handle, path: string, position: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(out, done, length - done, position + done);
    if (bytesRead === 0) throw new SafetensorsError(path, `file ended at byte ${position + done} while reading ${length} bytes at ${position} (changed since it was opened?)`);
    done += bytesRead;
  }
  return out;
}

function tensorBytes(name: string, t: SafetensorsTensor & { data: SafetensorsData }, fail: (problem: string) => never): Uint8Array {
  const count = elementCount([...t.shape]) ?? fail(`tensor ${JSON.stringify(name)}: shape too large`);
  const want = count * (DTYPE_SIZES[t.dtype] ?? 0);
  const d = t.data;
  let out: ArrayBufferView | undefined;
  if (d instanceof Uint8Array) out = d;
  else if (t.dtype === "F32" && d instanceof Float32Array) out = d;
  else if (t.dtype === "F64" && (d instanceof Float64Array || d instanceof Float32Array)) out = d instanceof Float64Array ? d : Float64Array.from(d);
  else if ((t.dtype === "F16" || t.dtype === "BF16") && d instanceof Uint16Array) out = d;
  else if (t.dtype === "F16" && d instanceof Float32Array) out = f32ArrayToF16(d);
  else if (t.dtype === "BF16" && d instanceof Float32Array) out = f32ArrayToBf16(d);
  else if (t.dtype === "I32" && d instanceof Int32Array) out = d;
  else if (t.dtype === "I64" && (d instanceof BigInt64Array || d instanceof Int32Array)) out = d instanceof BigInt64Array ? d : BigInt64Array.from(d, (v) => BigInt(v));
  if (out === undefined) fail(`tensor ${JSON.stringify(name)}: ${d?.constructor?.name ?? typeof d} cannot hold ${t.dtype} data`);
  const bytes = new Uint8Array(out!.buffer, out!.byteOffset, out!.byteLength);
  if (bytes.byteLength !== want) {
    fail(`tensor ${JSON.stringify(name)}: ${t.dtype} [${t.shape.join(", ")}] needs ${want} bytes, data has ${bytes.byteLength}`);
  }
  return bytes;
}

/** Orders names by their UTF-8 bytes, as the reference writer (Rust String ordering) does. */
function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}
