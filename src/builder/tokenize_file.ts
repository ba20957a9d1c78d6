// A text file → a nanoGPT .bin token file (src/data/token_file.ts), streamed: the file is read in
// chunks of bytes, each cut just before a line that starts with a printable ASCII character (a
// pre-tokenizer boundary for the byte-level patterns, so the ids equal those of the whole text),
// encoded without special tokens (nanoGPT's encode_ordinary) and appended in order. Given a
// tokenizer folder, chunks are encoded on worker threads (tokenize_worker.ts), a bounded number in
// flight; memory stays at a few chunks' bytes and ids whatever the corpus size.

import { open } from "node:fs/promises";
import { loadTokenizer, type Tokenizer } from "../data/tokenizer.ts";
import { DataFileError, firstInvalidUtf8 } from "../data/text_file.ts";
import { writeJsonAtomic } from "../io/atomic.ts";
import { sidecarPath, tokenDtypeFor, type TokenDtype } from "../data/token_file.ts";

export interface TokenizeFileResult {
  tokens: number;
  dtype: TokenDtype;
  bytes: number;
  /** the encoding threads used (1: the calling thread) */
  threads: number;
}

export interface TokenizeFileOptions {
  /** bytes read per chunk (default 4 MiB) */
  chunkBytes?: number;
  /** worker threads encoding chunks; needs `tokenizer` given as a folder (default: the cores, at most 4) */
  threads?: number;
}

/** A chunk's ids, or the offset in the chunk of its first invalid UTF-8 byte. */
export type ChunkResult = { ids: Uint16Array | Uint32Array } | { invalidAt: number };

const STRICT = new TextDecoder("utf-8", { fatal: true });

/** Encodes one chunk of UTF-8 bytes (the calling thread's and the workers' code). */
export function encodeChunk(tokenizer: Tokenizer, bytes: Uint8Array, dtype: TokenDtype): ChunkResult {
  let text: string;
  try {
    text = STRICT.decode(bytes);
  } catch {
    return { invalidAt: Math.max(0, firstInvalidUtf8(bytes)) };
  }
  const ids = tokenizer.encode(text, { addSpecialTokens: false });
  return { ids: dtype === "uint16" ? Uint16Array.from(ids) : Uint32Array.from(ids) };
}

/**
 * Tokenizes `input` into `output` (+ the `output`.json sidecar: dtype, vocabSize, tokens).
 * `tokenizer`: a Tokenizer (encoded on this thread) or a tokenizer folder (encoded on workers).
 */
export async function tokenizeFile(tokenizer: Tokenizer | string, input: string, output: string, options: TokenizeFileOptions = {}): Promise<TokenizeFileResult> {
  const dir = typeof tokenizer === "string" ? tokenizer : undefined;
  const tok = typeof tokenizer === "string" ? await loadTokenizer(tokenizer).catch((e: Error) => {
    throw new DataFileError(`--tokenizer ${tokenizer}: ${e.message.replace(/^\[tokenizer\]\s*/, "")}`);
  }) : tokenizer;
  const dtype = tokenDtypeFor(tok.vocabSize);
  const chunkBytes = options.chunkBytes ?? 4 << 20;
  const threads = dir ? Math.max(1, Math.floor(options.threads ?? Math.min(4, navigator.hardwareConcurrency || 1))) : 1;
  let src;
  try {
    src = await open(input, "r");
  } catch {
    throw new DataFileError(`--input ${input} not found`);
  }
  const pool = threads > 1 ? new WorkerPool(dir!, threads) : undefined;
  const out = await open(output, "w");
  let tokens = 0;
  let written = 0;
  const inFlight: { offset: number; result: Promise<ChunkResult> }[] = [];
  const writeOldest = async () => {
    const { offset, result } = inFlight.shift()!;
    const r = await result;
    if ("invalidAt" in r) throw new DataFileError(`--input ${input} is not UTF-8 text: invalid byte at offset ${offset + r.invalidAt}`);
    await out.write(new Uint8Array(r.ids.buffer, r.ids.byteOffset, r.ids.byteLength));
    tokens += r.ids.length;
    if (++written % 8 === 0) Bun.gc(true); // the chunks' buffers: collected now, not when the heap is large
  };
  try {
    const size = (await src.stat()).size;
    let carry = new Uint8Array(0);
    let carryOffset = 0;
    for (let pos = 0; pos < size; ) {
      const buf = new Uint8Array(carry.length + Math.min(chunkBytes, size - pos));
      buf.set(carry);
      const { bytesRead } = await src.read(buf, carry.length, buf.length - carry.length, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      const data = buf.subarray(0, carry.length + bytesRead);
      const cut = pos >= size ? data.length : lastBoundary(data);
      if (cut > 0) {
        const chunk = data.slice(0, cut);
        inFlight.push({ offset: carryOffset, result: pool ? pool.encode(chunk, dtype) : Promise.resolve(encodeChunk(tok, chunk, dtype)) });
        while (inFlight.length > 2 * threads) await writeOldest();
      }
      carry = data.slice(cut);
      carryOffset += cut;
    }
    while (inFlight.length) await writeOldest();
  } finally {
    pool?.close();
    await Promise.allSettled(inFlight.map((f) => f.result));
    await out.close();
    await src.close();
  }
  await writeJsonAtomic(sidecarPath(output), { dtype, vocabSize: tok.vocabSize, tokens });
  return { tokens, dtype, bytes: tokens * (dtype === "uint16" ? 2 : 4), threads };
}

const printable = (c: number) => c > 0x20 && c < 0x7f;

/**
 * The index just after the last "\n" that sits between two printable ASCII bytes ("x\nY"), 0 if none.
 * There the ids of the two sides do not depend on each other for the byte-level patterns: "\n" is
 * a pre-token on its own (or ends a punctuation one, Llama 3's `[^\s\p{L}\p{N}]+[\r\n]*`) both at the
 * end of a chunk and before "Y". After a longer whitespace run they would: GPT-2's `\s+(?!\S)` takes
 * "\n\n" whole at the end of a text but leaves the last "\n" to `\s+` before a letter.
 */
function lastBoundary(b: Uint8Array): number {
  for (let i = b.length - 1; i > 1; i--) if (b[i - 1] === 0x0a && printable(b[i]) && printable(b[i - 2])) return i;
  return 0;
}

/** Workers that each load the tokenizer once and encode chunks in the order they are sent. */
class WorkerPool {
  readonly #workers: Worker[] = [];
  readonly #waiting: Map<number, { resolve(r: ChunkResult): void; reject(e: Error): void }>[] = [];
  #next = 0;
  #seq = 0;

  constructor(dir: string, n: number) {
    for (let w = 0; w < n; w++) {
      const worker = new Worker(new URL("./tokenize_worker.ts", import.meta.url).href);
      const waiting = new Map<number, { resolve(r: ChunkResult): void; reject(e: Error): void }>();
      worker.onmessage = (e: MessageEvent) => {
        const m = e.data as { seq: number; result?: ChunkResult; error?: string };
        const p = waiting.get(m.seq);
        waiting.delete(m.seq);
        if (m.error !== undefined) p?.reject(new Error(`[tokenize] worker: ${m.error}`));
        else p?.resolve(m.result!);
      };
      worker.onerror = (e) => {
        for (const p of waiting.values()) p.reject(new Error(`[tokenize] worker failed: ${e.message}`));
        waiting.clear();
      };
      worker.postMessage({ type: "init", dir });
      this.#workers.push(worker);
      this.#waiting.push(waiting);
    }
  }

  encode(bytes: Uint8Array, dtype: TokenDtype): Promise<ChunkResult> {
    const w = this.#next++ % this.#workers.length;
    const seq = this.#seq++;
    return new Promise((resolve, reject) => {
      this.#waiting[w].set(seq, { resolve, reject });
      this.#workers[w].postMessage({ type: "encode", seq, bytes, dtype }, [bytes.buffer]);
    });
  }

  close(): void {
    for (const w of this.#workers) w.terminate();
  }
}
