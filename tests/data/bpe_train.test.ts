// bpe_train: a trained tokenizer.json reads back identically through kiln's loader and the reference
// library (@huggingface/tokenizers, live), round-trips the mixed corpus, and is deterministic.
import { describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { trainBpe, trainBpeFiles } from "../../src/data/bpe_train.ts";
import { loadTokenizer, tokenizerFromJSON } from "../../src/data/tokenizer.ts";

const corpus = await Bun.file(join(import.meta.dir, "../fixtures/tokenizer_corpus.txt")).text();
const lines = corpus.split(/(?<=\n)/);
const training = [
  "the cat sat on the mat. the cat ate the rat. 123 456 7890 1234567\n".repeat(20),
  "def f(x):\n    return x * 2  # doubled\n".repeat(10),
];

describe("bpe_train", () => {
  for (const pattern of ["gpt2", "llama3", "qwen2"] as const) {
    test(`${pattern} pattern: loader and reference library agree, round trip`, () => {
      const t = trainBpe(training, { vocabSize: 300, minFrequency: 2, specialTokens: ["<|endoftext|>", "<pad>"], pattern });
      expect(t.tokenizerJson.model).toMatchObject({ type: "BPE" });
      expect(Array.isArray((t.tokenizerJson.model as any).merges[0])).toBe(true); // new ["a","b"] form
      const kiln = tokenizerFromJSON(t.tokenizerJson, t.tokenizerConfig, "kiln");
      const lib = tokenizerFromJSON(t.tokenizerJson, t.tokenizerConfig, "reference");
      expect(kiln.vocabSize).toBe(t.vocab.size);
      expect(t.vocab.size).toBeLessThanOrEqual(300); // fewer when no pair is left with count >= minFrequency
      expect(kiln.tokenToId("<|endoftext|>")).toBe(0);
      expect(kiln.tokenToId("<pad>")).toBe(1);
      expect(kiln.eosTokenId).toBe(0);
      expect(kiln.tokenToId("Ġthe")).toBeGreaterThan(257);
      for (const s of [corpus, ...lines, ...training]) {
        const ids = kiln.encode(s);
        expect(ids).toEqual(lib.encode(s));
        expect(kiln.decode(ids)).toBe(s);
      }
    });
  }

  test("byLine reproduces the Rust BpeTrainer's vocabulary and merges (ties included)", async () => {
    const ref = await Bun.file(join(import.meta.dir, "../fixtures/tokenizers/rust_trained_corpus/tokenizer.json")).json();
    const t = trainBpe([corpus], { vocabSize: 600, minFrequency: 2, specialTokens: ["<|endoftext|>"], byLine: true });
    expect(Object.fromEntries(t.vocab)).toEqual(ref.model.vocab);
    expect(t.merges).toEqual(ref.model.merges.map((m: string | string[]) => (typeof m === "string" ? m.split(" ") : m)));
  });

  test("minFrequency stops early; deterministic", () => {
    const a = trainBpe(training, { vocabSize: 5000, minFrequency: 5 });
    const b = trainBpe(training, { vocabSize: 5000, minFrequency: 5 });
    expect(a.merges.length).toBeGreaterThan(10);
    expect(a.vocab.size).toBeLessThan(5000);
    expect(a.merges).toEqual(b.merges);
    expect(a.merges[0]).toEqual(["a", "t"]); // cat, sat, mat, ate, rat: the most frequent pair
  });

  test("trainBpeFiles writes a folder that loadTokenizer reads", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kiln-bpe-"));
    try {
      const txt = join(dir, "a.txt");
      await Bun.write(txt, training.join(""));
      const out = join(dir, "tok");
      await trainBpeFiles([txt], out, { vocabSize: 280, specialTokens: ["<|endoftext|>"] });
      const tok = await loadTokenizer(out);
      expect(tok.vocabSize).toBe(280);
      expect(tok.eosTokenId).toBe(0);
      expect(tok.decode(tok.encode("the cat <|endoftext|>"))).toBe("the cat <|endoftext|>");
      expect(tok.encode("<|endoftext|>")).toEqual([0]);
    } finally {
      await rm(dir, { recursive: true });
    }
  });

  test("too small a vocabulary is refused", () => {
    expect(() => trainBpe(["x"], { vocabSize: 100 })).toThrow(/below 0 special \+ 256 byte tokens/);
  });
});
