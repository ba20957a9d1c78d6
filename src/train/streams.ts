// Training data streamed from disk, for DataLoader: JSONL files one object per line, and token
// files (nanoGPT's train.bin: a flat array of uint16 or uint32 token ids, src/data/token_file.ts) cut into windows of
// blockSize + 1 tokens (x = window[0:T], y = window[1:T+1]). Both read the file in chunks: a file
// larger than memory trains, and each epoch reads it again from the start.

import { ConfigError } from "./config.ts";
import type { Example } from "./collate.ts";
import { tokenFileInfo, type TokenDtype } from "../data/token_file.ts";

/** How a file-backed stream is rebuilt in a data-loader worker thread (see workers.ts). */
export type StreamSpec = { kind: "jsonl"; path: string } | { kind: "tokens"; path: string; blockSize: number; dtype?: TokenDtype };

/** The key under which a stream generator function carries its StreamSpec. */
export const STREAM_SPEC = Symbol.for("kiln.streamSpec");

/** The non-blank lines of a JSONL file with their 1-based line numbers (not parsed: a worker parses only its own). */
export async function* jsonlLines(path: string): AsyncGenerator<{ text: string; line: number }> {
  const file = Bun.file(path);
  if (!(await file.exists())) throw new ConfigError(`data file not found: ${path}`);
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let rest = "";
  let line = 0;
  for await (const chunk of file.stream() as unknown as AsyncIterable<Uint8Array>) {
    rest += decoder.decode(chunk, { stream: true });
    const lines = rest.split("\n");
    rest = lines.pop()!;
    for (const text of lines) {
      line++;
      if (text.trim()) yield { text, line };
    }
  }
  rest += decoder.decode();
  line++;
  if (rest.trim()) yield { text: rest, line };
}

/** One JSONL line as an object; a bad line names the file and its number. */
export function parseJsonlLine<E>(path: string, { text, line }: { text: string; line: number }): E {
  try {
    return JSON.parse(text) as E;
  } catch (e) {
    throw new ConfigError(`${path}:${line}: not a JSON object (${(e as Error).message})`);
  }
}

/** A generator function over the objects of a JSONL file (blank lines skipped; a bad line names its number). */
export function jsonlExamples<E = Example>(path: string): () => AsyncGenerator<E> {
  const gen = async function* () {
    for await (const l of jsonlLines(path)) yield parseJsonlLine<E>(path, l);
  };
  return Object.assign(gen, { [STREAM_SPEC]: { kind: "jsonl", path } satisfies StreamSpec });
}

/**
 * A generator function over consecutive, non-overlapping windows of a token file: { x, y } with
 * blockSize tokens each (y shifted by one). The dtype comes from the file's sidecar `<file>.json`
 * (written by `kiln data tokenize`); without one, `dtype` (default "uint16", nanoGPT's own files).
 */
export function tokenFileWindows(path: string, { blockSize, dtype }: { blockSize: number; dtype?: TokenDtype }): () => AsyncGenerator<{ x: Int32Array; y: Int32Array }> {
  const gen = async function* () {
    const file = Bun.file(path);
    if (!(await file.exists())) throw new ConfigError(`token file not found: ${path}`);
    const { width } = tokenFileInfo(path, file.size, dtype);
    const need = blockSize + 1;
    let carry = new Int32Array(0);
    let pending = new Uint8Array(0);
    for await (const chunk of file.stream() as unknown as AsyncIterable<Uint8Array>) {
      // whole tokens of this chunk (a token may straddle two chunks)
      const bytes = new Uint8Array(pending.length + chunk.length);
      bytes.set(pending);
      bytes.set(chunk, pending.length);
      const whole = bytes.length - (bytes.length % width);
      pending = bytes.slice(whole);
      const view = new DataView(bytes.buffer, bytes.byteOffset, whole);
      const ids = new Int32Array(carry.length + whole / width);
      ids.set(carry);
      for (let i = 0; i < whole / width; i++) ids[carry.length + i] = width === 2 ? view.getUint16(i * 2, true) : view.getUint32(i * 4, true);
      let at = 0;
      for (; at + need <= ids.length; at += blockSize) yield { x: ids.slice(at, at + blockSize), y: ids.slice(at + 1, at + need) };
      carry = ids.slice(at);
    }
  };
  return Object.assign(gen, { [STREAM_SPEC]: { kind: "tokens", path, blockSize, dtype } satisfies StreamSpec });
}

/** Windows first..first+count-1 of a token file, read directly (a worker's share of an epoch). */
export async function tokenFileWindowRange(spec: Extract<StreamSpec, { kind: "tokens" }>, first: number, count: number): Promise<{ x: Int32Array; y: Int32Array }[]> {
  const file = Bun.file(spec.path);
  if (!(await file.exists())) throw new ConfigError(`token file not found: ${spec.path}`);
  const { width, tokens } = tokenFileInfo(spec.path, file.size, spec.dtype);
  const T = spec.blockSize;
  const windows = Math.max(0, Math.floor((tokens - 1) / T));
  const n = Math.max(0, Math.min(count, windows - first));
  if (n === 0) return [];
  const bytes = new Uint8Array(await file.slice(first * T * width, ((first + n) * T + 1) * width).arrayBuffer());
  const view = new DataView(bytes.buffer);
  const ids = Int32Array.from({ length: bytes.length / width }, (_, i) => (width === 2 ? view.getUint16(i * 2, true) : view.getUint32(i * 4, true)));
  return Array.from({ length: n }, (_, k) => ({ x: ids.slice(k * T, k * T + T), y: ids.slice(k * T + 1, k * T + T + 1) }));
}
