// StreamingDetokenizer (src/models/detokenizer.ts): pieces are final text — no half characters,
// no stop-string prefixes — and concatenate to the full decode, for a byte-level BPE tokenizer and
// for a SentencePiece-style one that strips the leading space of a decode (Metaspace).

import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { loadTokenizer, type Tokenizer } from "../../src/data/tokenizer.ts";
import { StreamingDetokenizer } from "../../src/models/detokenizer.ts";

const bpe = await loadTokenizer(join(import.meta.dir, "..", "fixtures", "tokenizers", "rust_trained_corpus"));

/** Metaspace-like: "▁" is a space, and decode drops the first leading space (as Llama 2's). */
function metaspace(vocab: string[]): Tokenizer {
  return {
    vocabSize: vocab.length,
    specialTokens: new Map([["<s>", 0]]),
    bosTokenId: 0,
    encode: () => [],
    decode: (ids, opts) => {
      const parts = Array.from(ids).filter((i) => !(opts?.skipSpecialTokens && i === 0)).map((i) => vocab[i]);
      return parts.join("").replaceAll("▁", " ").replace(/^ /, "");
    },
    tokenToId: (t) => vocab.indexOf(t),
    idToToken: (i) => vocab[i],
  };
}

function run(tok: Tokenizer, ids: number[], opts: ConstructorParameters<typeof StreamingDetokenizer>[1] = {}) {
  const d = new StreamingDetokenizer(tok, opts);
  const pieces: string[] = [];
  for (const id of ids) {
    if (d.stopped) break;
    pieces.push(d.push(id));
  }
  pieces.push(d.finish());
  return { pieces, text: d.text, d };
}

describe("StreamingDetokenizer", () => {
  test("byte-level: a character split over tokens comes out once it is whole", () => {
    const text = "tea ☕ and 😀, résumé";
    const ids = bpe.encode(text);
    const { pieces, text: out } = run(bpe, ids);
    expect(out).toBe(text);
    expect(pieces.join("")).toBe(text);
    expect(pieces.some((p) => p.includes("\uFFFD"))).toBe(false);
    expect(pieces.every((p) => p.isWellFormed())).toBe(true);
  });

  test("byte-level: the anchor (last prompt token) gives context and is not part of the text", () => {
    const ids = bpe.encode("Hello there world");
    const { pieces } = run(bpe, ids.slice(2), { anchor: ids[1] });
    expect(pieces.join("")).toBe(bpe.decode(ids).slice(bpe.decode(ids.slice(0, 2)).length));
  });

  test("Metaspace: spaces between pieces survive the decoder's leading-space strip", () => {
    const tok = metaspace(["<s>", "▁Hello", "▁world", "!", "▁how", "▁are", "▁you"]);
    const { pieces, text } = run(tok, [2, 3, 4, 5, 6], { anchor: 1 });
    expect(pieces.filter((p) => p)).toEqual([" world", "!", " how", " are", " you"]);
    expect(text).toBe(" world! how are you");
    // after BOS (skipped as special) the first word loses its space, as HF decodes it
    expect(run(tok, [1, 2], { anchor: 0 }).text).toBe("Hello world");
  });

  test("stop strings: held back while they may start, cut when complete, flushed when they fail", () => {
    const ids = bpe.encode("one two. three");
    const stopped = run(bpe, ids, { stopStrings: ["o. t"] });
    expect(stopped.d.stopped).toBe(true);
    expect(stopped.d.stopString).toBe("o. t");
    expect(stopped.text).toBe("one tw");
    expect(stopped.pieces.join("")).toBe("one tw");
    const failed = run(bpe, ids, { stopStrings: ["three!"] });
    expect(failed.d.stopped).toBe(false);
    expect(failed.pieces.join("")).toBe("one two. three");
    expect(failed.pieces.at(-1)).toBe("three".slice(-failed.pieces.at(-1)!.length)); // held to the end
    expect(() => stopped.d.push(1)).toThrow(/after a stop string/);
  });

  test("a tokenizer whose decode is not prefix-stable falls back to decoding everything", () => {
    // decode reverses the text: a context token would not be a prefix
    const vocab = ["a", "b", "c"];
    const odd: Tokenizer = { ...metaspace(vocab), decode: (ids) => Array.from(ids).map((i) => vocab[i]).reverse().join("") };
    const { text } = run(odd, [1, 2], { anchor: 0 });
    expect(text).toBe("cb");
  });
});
