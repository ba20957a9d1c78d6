// Worker thread of tokenizeFile: loads the tokenizer folder once, then encodes each chunk of UTF-8
// bytes it is sent (in order) and sends the ids back, their buffer transferred.

import { loadTokenizer, type Tokenizer } from "../data/tokenizer.ts";
import type { TokenDtype } from "../data/token_file.ts";
import { encodeChunk } from "./tokenize_file.ts";

declare const self: Worker;

let ready: Promise<Tokenizer> | undefined;

self.onmessage = async (e: MessageEvent) => {
  const m = e.data as { type: "init"; dir: string } | { type: "encode"; seq: number; bytes: Uint8Array; dtype: TokenDtype };
  if (m.type === "init") {
    ready = loadTokenizer(m.dir);
    ready.catch(() => {}); // reported with the first chunk
    return;
  }
  try {
    const result = encodeChunk(await ready!, m.bytes, m.dtype);
    self.postMessage({ seq: m.seq, result }, "ids" in result ? [result.ids.buffer as ArrayBuffer] : []);
    Bun.gc(true); // a chunk's text and ids are garbage now: without it the heaps grow past 1 GB on a 2 GB corpus
  } catch (err) {
    self.postMessage({ seq: m.seq, error: (err as Error).message });
  }
};
