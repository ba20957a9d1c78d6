// Per-example transforms that DataLoader worker threads can import (see workers.ts): each export
// is a factory, called once per thread with its options, returning the function for one example.

import { loadTokenizer } from "../data/tokenizer.ts";
import type { Example } from "./collate.ts";
import { ConfigError } from "./config.ts";
import type { ModuleRef } from "./workers.ts";

export interface LmTokensOptions {
  /** a Hugging Face tokenizer folder (tokenizer.json, or vocab.json + merges.txt) */
  tokenizer: string;
  /** the text field of each row (default "text") */
  field?: string;
  /** keep at most this many tokens + 1 (default: all) */
  maxLength?: number;
}

/** Rows { [field]: string } → { x, y }: the tokens and the same shifted by one (next-token targets). */
export async function lmTokens(options: LmTokensOptions): Promise<(row: Record<string, unknown>) => Example> {
  const tok = await loadTokenizer(options.tokenizer);
  const field = options.field ?? "text";
  return (row) => {
    const text = row[field];
    if (typeof text !== "string") throw new ConfigError(`field "${field}" is not a string`);
    let ids = tok.encode(text, { addSpecialTokens: false });
    if (options.maxLength !== undefined) ids = ids.slice(0, options.maxLength + 1);
    return { x: Int32Array.from(ids.slice(0, -1)), y: Int32Array.from(ids.slice(1)) };
  };
}

/** `transform: tokenizeTransform({ tokenizer: "models/gpt2" })`: lmTokens, run in the loader's worker threads. */
export function tokenizeTransform(options: LmTokensOptions): ModuleRef {
  return { module: new URL("./transforms.ts", import.meta.url).href, export: "lmTokens", options };
}
