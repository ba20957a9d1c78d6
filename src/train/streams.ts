// Training data streamed from disk, for DataLoader: JSONL files one object per line, and token
// files (nanoGPT's train.bin: a flat array of uint16 or uint32 token ids, src/data/token_file.ts) cut into windows of
// blockSize + 1 tokens (x = window[0:T], y = window[1:T+1]). Both read the file in chunks: a file
// larger than memory trains, and each epoch reads it again from the start.

import { ConfigError } from "./config.ts";
import type { Example } from "./data_loader.ts";
import { tokenFileInfo, type TokenDtype } from "../data/token_file.ts";

/** A generator function over the objects of a JSONL file (blank lines skipped; a bad line names its number). */
export function jsonlExamples<E = Example>(path: string): () => AsyncGenerator<E> {
  return async function* () {
    const file = Bun.file(path);
    if (!(await file.exists())) throw new ConfigError(`data file not found: ${path}`);
    const decoder = new TextDecoder("utf-8", { fatal: true });
    let rest = "";
    let line = 0;
    const parse = (text: string): E | undefined => {
      line++;
      if (!text.trim()) return undefined;
      try {
        return JSON.parse(text) as E;
      } catch (e) {
        throw new ConfigError(`${path}:${line}: not a JSON object (${(e as Error).message})`);
      }
    };
    for await (const chunk of file.stream() as unknown as AsyncIterable<Uint8Array>) {
      rest += decoder.decode(chunk, { stream: true });
      const lines = rest.split("\n");
      rest = lines.pop()!;
      for (const l of lines) {
        const e = parse(l);
        if (e !== undefined) yield e;
      }
    }
    rest += decoder.decode();
    const e = parse(rest);
    if (e !== undefined) yield e;
  };
}

/**
 * A generator function over consecutive, non-overlapping windows of a token file: { x, y } with
 * blockSize tokens each (y shifted by one). The dtype comes from the file's sidecar `<file>.json`
 * (written by `kiln data tokenize`); without one, `dtype` (default "uint16", nanoGPT's own files).
 */
export function tokenFileWindows(path: string, { blockSize, dtype }: { blockSize: number; dtype?: TokenDtype }): () => AsyncGenerator<{ x: Int32Array; y: Int32Array }> {
  return async function* () {
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
}
