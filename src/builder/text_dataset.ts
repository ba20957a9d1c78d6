// TextDataset: texts (or a text / token file) → next-token examples { x, y } of blockSize tokens,
// windows `stride` apart, split into train and validation by position (nanoGPT's 90/10). Token
// files are nanoGPT's .bin layout (src/data/token_file.ts: uint16, or uint32 for vocabularies over
// 65536, the dtype in a `<file>.json` sidecar), memory-mapped so a corpus bigger than memory trains.

import { readFileSync } from "node:fs";
import type { Tokenizer } from "../data/tokenizer.ts";
import { DataFileError, firstInvalidUtf8 } from "../data/text_file.ts";
import { readTokenFile } from "../data/token_file.ts";
import type { Dataset } from "../train/data_loader.ts";
import { ConfigError } from "../train/config.ts";

export interface TextDatasetOptions {
  blockSize: number;
  /** tokens between window starts (default blockSize: no overlap) */
  stride?: number;
  /** fraction of the tokens in the train split (default 0.9); the rest is `val` */
  trainSplit?: number;
  /** needed for texts and text files; a .bin file is already tokens */
  tokenizer?: Tokenizer;
  /** put the tokenizer's eos between documents (default true when it has one) */
  separateDocuments?: boolean;
}

export type TokenArray = Uint16Array | Uint32Array | Int32Array;
export type TextExample = { x: Int32Array; y: Int32Array };

export class TextDataset implements Dataset<TextExample> {
  readonly tokens: TokenArray;
  readonly blockSize: number;
  readonly stride: number;
  readonly train: TokenWindows;
  readonly val: TokenWindows;
  /** windows over all the tokens (the train split's and val's together) */
  readonly length: number;

  /** `source`: texts, a path (.bin token file or a UTF-8 text file), or token ids. */
  constructor(source: string[] | string | TokenArray, options: TextDatasetOptions) {
    const { blockSize, stride = blockSize, trainSplit = 0.9 } = options;
    if (!(Number.isInteger(blockSize) && blockSize > 0)) throw new ConfigError(`TextDataset: blockSize must be a positive integer, got ${blockSize}`);
    if (!(Number.isInteger(stride) && stride > 0)) throw new ConfigError(`TextDataset: stride must be a positive integer, got ${stride}`);
    if (!(trainSplit > 0 && trainSplit <= 1)) throw new ConfigError(`TextDataset: trainSplit must be in (0, 1], got ${trainSplit}`);
    this.blockSize = blockSize;
    this.stride = stride;
    if (typeof source === "string" && /\.bin$/i.test(source)) this.tokens = readTokenFile(source);
    else {
      const texts = typeof source === "string" ? [readUtf8(source)] : Array.isArray(source) ? source : undefined;
      if (texts) {
        const tok = options.tokenizer;
        if (!tok) throw new ConfigError("TextDataset: texts need a tokenizer (options.tokenizer)");
        const sep = options.separateDocuments !== false && tok.eosTokenId !== undefined ? [tok.eosTokenId] : [];
        const ids: number[] = [];
        texts.forEach((t, i) => {
          if (i > 0) ids.push(...sep);
          for (const id of tok.encode(t)) ids.push(id);
        });
        this.tokens = Int32Array.from(ids);
      } else this.tokens = source as TokenArray;
    }
    const cut = Math.floor(this.tokens.length * trainSplit);
    this.train = new TokenWindows(this.tokens.subarray(0, cut), blockSize, stride);
    this.val = new TokenWindows(this.tokens.subarray(cut), blockSize, stride);
    this.length = new TokenWindows(this.tokens, blockSize, stride).length;
    if (this.train.length === 0) throw new ConfigError(`TextDataset: ${this.tokens.length} tokens make no train window of blockSize ${blockSize} (+1 target); use more text or a smaller blockSize`);
  }

  get(i: number): TextExample {
    return windowAt(this.tokens, i, this.blockSize, this.stride);
  }
}

/** Examples over one split's tokens. */
export class TokenWindows implements Dataset<TextExample> {
  readonly length: number;
  constructor(readonly tokens: TokenArray, readonly blockSize: number, readonly stride: number) {
    this.length = tokens.length > blockSize ? Math.floor((tokens.length - blockSize - 1) / stride) + 1 : 0;
  }
  get(i: number): TextExample {
    if (!(i >= 0 && i < this.length)) throw new RangeError(`window ${i} out of range (${this.length})`);
    return windowAt(this.tokens, i, this.blockSize, this.stride);
  }
  /**
   * At most `n` windows spread evenly over the split (all of them when it has no more): a bounded
   * evaluation set that is the same at every evaluation, so its losses compare across steps.
   */
  sample(n: number): Dataset<TextExample> {
    if (!(Number.isInteger(n) && n > 0)) throw new ConfigError(`TokenWindows.sample: n must be a positive integer, got ${n}`);
    if (n >= this.length) return this;
    const all = this.length;
    return { length: n, get: (i: number) => this.get(Math.floor((i * all) / n)) };
  }
}

function windowAt(tokens: TokenArray, i: number, blockSize: number, stride: number): TextExample {
  const start = i * stride;
  const x = Int32Array.from(tokens.subarray(start, start + blockSize));
  const y = Int32Array.from(tokens.subarray(start + 1, start + blockSize + 1));
  return { x, y };
}

function readUtf8(path: string): string {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch {
    throw new DataFileError(`data file ${path} not found or unreadable`);
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    throw new DataFileError(`data file ${path} is not UTF-8 text: invalid byte 0x${bytes[at].toString(16).padStart(2, "0")} at offset ${at}`);
  }
}

export { readTokenFile };
