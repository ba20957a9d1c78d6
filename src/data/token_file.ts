// Token files: nanoGPT's .bin layout (a flat array of little-endian token ids, no header) in
// uint16, or uint32 when the vocabulary does not fit 16 bits, with a sidecar `<file>.json`
// ({ dtype, vocabSize, tokens }) written by `kiln data tokenize` so every reader knows the width.
// A file without a sidecar is uint16 (nanoGPT's own files) unless the caller names the dtype.
// The sidecar's token count is checked against the file size: a file read at the wrong width
// fails here instead of training on garbage ids.

import { readFileSync } from "node:fs";
import { DataFileError } from "./text_file.ts";

export type TokenDtype = "uint16" | "uint32";

export interface TokenFileInfo {
  dtype: TokenDtype;
  /** bytes per token */
  width: 2 | 4;
  /** from the sidecar, when there is one */
  vocabSize?: number;
  tokens: number;
}

/** The dtype of token ids for a vocabulary of `vocabSize` (ids 0 .. vocabSize-1). */
export function tokenDtypeFor(vocabSize: number): TokenDtype {
  return vocabSize <= 65536 ? "uint16" : "uint32";
}

export function sidecarPath(path: string): string {
  return path + ".json";
}

/**
 * How to read the token file at `path` of `byteLength` bytes: the sidecar's dtype, else `dtype`,
 * else uint16. A `dtype` that contradicts the sidecar, an unknown dtype, or a size that is not the
 * sidecar's token count are errors naming the file.
 */
export function tokenFileInfo(path: string, byteLength: number, dtype?: TokenDtype): TokenFileInfo {
  let side: { dtype?: unknown; vocabSize?: unknown; tokens?: unknown } | undefined;
  let text: string | undefined;
  try {
    text = readFileSync(sidecarPath(path), "utf8");
  } catch {
    // no sidecar
  }
  if (text !== undefined) {
    try {
      side = JSON.parse(text);
    } catch {
      throw new DataFileError(`token file ${path}: ${sidecarPath(path)} is not valid JSON`);
    }
  }
  const named = side?.dtype ?? dtype ?? "uint16";
  if (named !== "uint16" && named !== "uint32") throw new DataFileError(`token file ${path}: dtype ${JSON.stringify(named)} (expected "uint16" or "uint32")`);
  if (dtype && side?.dtype && dtype !== side.dtype) throw new DataFileError(`token file ${path}: dtype ${dtype} was asked but ${sidecarPath(path)} says ${side.dtype}`);
  const width = named === "uint32" ? 4 : 2;
  if (byteLength % width !== 0) throw new DataFileError(`token file ${path}: ${byteLength} bytes is not a whole number of ${named} tokens`);
  const tokens = byteLength / width;
  if (typeof side?.tokens === "number" && side.tokens !== tokens)
    throw new DataFileError(`token file ${path}: ${sidecarPath(path)} says ${side.tokens} tokens but the file holds ${tokens} ${named} tokens (truncated, or written with another dtype)`);
  const vocabSize = typeof side?.vocabSize === "number" ? side.vocabSize : undefined;
  if (vocabSize !== undefined && tokenDtypeFor(vocabSize) === "uint32" && named === "uint16")
    throw new DataFileError(`token file ${path}: vocabSize ${vocabSize} does not fit uint16 ids`);
  return { dtype: named, width, vocabSize, tokens };
}

/** The token file at `path`, memory-mapped (the OS pages it in on demand: any size reads in bounded memory). */
export function readTokenFile(path: string, dtype?: TokenDtype): Uint16Array | Uint32Array {
  let bytes: Uint8Array;
  try {
    bytes = Bun.mmap(path, { shared: false });
  } catch (e) {
    throw new DataFileError(`token file ${path}: ${(e as Error).message}`);
  }
  const info = tokenFileInfo(path, bytes.byteLength, dtype);
  return info.width === 4 ? new Uint32Array(bytes.buffer, bytes.byteOffset, info.tokens) : new Uint16Array(bytes.buffer, bytes.byteOffset, info.tokens);
}
