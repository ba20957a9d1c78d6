// A text file → a nanoGPT .bin token file, streamed: the text is read in chunks, each cut just
// before a line that starts with a non-space character (a pre-tokenizer boundary for the byte-level
// patterns, so the ids equal those of the whole text), encoded and appended. Memory stays at a
// chunk's text and ids whatever the corpus size.

import { open } from "node:fs/promises";
import type { Tokenizer } from "../data/tokenizer.ts";
import { DataFileError, firstInvalidUtf8 } from "../data/text_file.ts";
import { writeJsonAtomic } from "../io/atomic.ts";
import { sidecarPath, tokenDtypeFor, type TokenDtype } from "../data/token_file.ts";

export interface TokenizeFileResult {
  tokens: number;
  dtype: TokenDtype;
  bytes: number;
}

/** Tokenizes `input` into `output` (+ `output`.json: dtype, vocabSize, tokens). */
export async function tokenizeFile(tokenizer: Tokenizer, input: string, output: string, { chunkBytes = 1 << 20 }: { chunkBytes?: number } = {}): Promise<TokenizeFileResult> {
  const dtype = tokenDtypeFor(tokenizer.vocabSize);
  const src = Bun.file(input);
  if (!(await src.exists())) throw new DataFileError(`--input ${input} not found`);
  const out = await open(output, "w");
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let carry = "";
  let tokens = 0;
  let offset = 0;
  const write = async (text: string) => {
    if (!text) return;
    const ids = tokenizer.encode(text);
    const arr = dtype === "uint16" ? Uint16Array.from(ids) : Uint32Array.from(ids);
    await out.write(new Uint8Array(arr.buffer));
    tokens += ids.length;
  };
  try {
    const size = src.size;
    for (let pos = 0; pos < size; pos += chunkBytes) {
      const bytes = new Uint8Array(await src.slice(pos, Math.min(size, pos + chunkBytes)).arrayBuffer());
      let text: string;
      try {
        text = carry + decoder.decode(bytes, { stream: true });
      } catch {
        const at = firstInvalidUtf8(bytes);
        throw new DataFileError(`--input ${input} is not UTF-8 text: invalid byte at offset ${pos + Math.max(0, at)}`);
      }
      offset = pos;
      const cut = lastBoundary(text);
      await write(text.slice(0, cut));
      carry = text.slice(cut);
    }
    try {
      carry += decoder.decode();
    } catch {
      throw new DataFileError(`--input ${input} is not UTF-8 text: it ends inside a character (offset ${offset})`);
    }
    await write(carry);
  } finally {
    await out.close();
  }
  await writeJsonAtomic(sidecarPath(output), { dtype, vocabSize: tokenizer.vocabSize, tokens });
  return { tokens, dtype, bytes: tokens * (dtype === "uint16" ? 2 : 4) };
}

/** The index just after the last "\n" that is followed by a non-whitespace character (0 if none). */
function lastBoundary(text: string): number {
  for (let i = text.length - 1; i > 0; i--) {
    if (text[i - 1] === "\n" && !/\s/.test(text[i])) return i;
  }
  return 0;
}
