// Hostile tokenizer.json files (src/data/tokenizer_check.ts), like the safetensors corpus: each case is
// a real tokenizers-trained file (tests/fixtures/tokenizers/shakespeare_qwen2) with one flaw, and every
// one must be refused with an Error naming the file and the problem, never load into garbage. Then a
// fuzz test over mutated copies, and the guard against regexes that backtrack for ever.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadTokenizer, tokenizerFromJSON, TokenizerFileError } from "../../src/data/tokenizer.ts";
import { nestedQuantifier } from "../../src/data/tokenizer_check.ts";
import { GPT2_PATTERN, LLAMA3_PATTERN, QWEN2_PATTERN } from "../../src/data/pretokenize.ts";

const FIXTURE = join(import.meta.dir, "../fixtures/tokenizers/shakespeare_qwen2");
const base = await Bun.file(join(FIXTURE, "tokenizer.json")).json();
const config = await Bun.file(join(FIXTURE, "tokenizer_config.json")).json();
const tmp = await mkdtemp(join(tmpdir(), "kiln-tokenizer-hostile-"));
afterAll(() => rm(tmp, { recursive: true, force: true }));

// biome-ignore lint: tokenizer.json is loosely typed by nature
type Json = any;
const FILE = "hostile/tokenizer.json";

/** The error of loading `base` after `mutate` (expected to throw). */
function loadError(mutate: (j: Json) => void): Error {
  const json = structuredClone(base);
  mutate(json);
  try {
    tokenizerFromJSON(json, config, "auto", FILE);
  } catch (e) {
    return e as Error;
  }
  throw new Error("loaded without an error");
}

function expectRejected(mutate: (j: Json) => void, ...parts: string[]): void {
  const e = loadError(mutate);
  expect(e).toBeInstanceOf(TokenizerFileError);
  expect(e.message).toContain(FILE);
  for (const p of parts) expect(e.message).toContain(p);
}


describe("tokenizer.json hostile files", () => {
  test("the base file loads and round-trips (so each case below has exactly one flaw)", () => {
    const tok = tokenizerFromJSON(structuredClone(base), config, "auto", FILE);
    expect(tok.decode(tok.encode("the cat and"))).toBe("the cat and");
  });

  test("a vocab id of 10^9, a negative one, a fractional one, a string one", () => {
    expectRejected((j) => (j.model.vocab.h = 1e9), 'model.vocab: token "h" has id 1000000000', "far outside");
    expectRejected((j) => (j.model.vocab.h = -5), 'token "h" has id -5, not an integer');
    expectRejected((j) => (j.model.vocab.h = 3.5), "has id 3.5");
    expectRejected((j) => (j.model.vocab.h = "12"), 'has id "12"');
  });

  test("two tokens with the same id (decode would print the wrong token)", () => {
    expectRejected((j) => (j.model.vocab.e = j.model.vocab.h), 'model.vocab: tokens "e" and "h" both have id');
  });

  test("added tokens: id 10^9, a negative id, no content, two sharing an id", () => {
    expectRejected((j) => (j.added_tokens[0].id = 1e9), "has id 1000000000", "added_tokens");
    expectRejected((j) => (j.added_tokens[1].id = -1), "added_tokens[1].id: -1");
    expectRejected((j) => delete j.added_tokens[1].content, "added_tokens[1].content");
    expectRejected((j) => (j.added_tokens[1].id = j.added_tokens[0].id), "both have id 0");
    expectRejected((j) => (j.added_tokens = { a: 1 }), "added_tokens: expected a list");
  });

  test("unknown model, pre-tokenizer, normalizer, decoder and post-processor types are named", () => {
    expectRejected((j) => (j.model.type = "Banana"), 'model.type: unknown tokenizer model type "Banana"', "BPE, WordPiece, Unigram");
    expectRejected((j) => (j.model.type = "WordLevel"), '"WordLevel"');
    expectRejected((j) => (j.pre_tokenizer.pretokenizers[1].type = "Banana"), 'pre_tokenizer.pretokenizers[1].type: unknown pre-tokenizer type "Banana"');
    expectRejected((j) => (j.pre_tokenizer = { type: "UnicodeScripts" }), '"UnicodeScripts"');
    expectRejected((j) => (j.normalizer = { type: "Sequence", normalizers: [{ type: "NFC" }, { type: "Banana" }] }), "normalizer.normalizers[1].type", '"Banana"');
    expectRejected((j) => (j.decoder = { type: "Banana" }), 'decoder.type: unknown decoder type "Banana"');
    expectRejected((j) => (j.post_processor = { type: "Banana" }), "post_processor.type", '"Banana"');
    expectRejected((j) => (j.pre_tokenizer = { type: "Sequence", pretokenizers: "x" }), "pre_tokenizer.pretokenizers: expected a list");
  });

  test("merges must be pairs of vocabulary tokens whose concatenation is in the vocabulary", () => {
    expectRejected((j) => (j.model.merges[3] = ["Ġ", "zzz"]), 'model.merges[3]: ["Ġ","zzz"]: "zzz" is not in the vocab');
    expectRejected((j) => (j.model.merges[3] = ["q", "q"]), '"qq" is not in the vocab');
    expectRejected((j) => (j.model.merges[0] = ["a"]), "model.merges[0]", "not a pair");
    expectRejected((j) => (j.model.merges[0] = ["a", "b", "c"]), "not a pair");
    expectRejected((j) => (j.model.merges[0] = [1, 2]), "not a pair");
    expectRejected((j) => (j.model.merges[0] = "Ġt"), "model.merges[0]", "not two tokens separated by one space");
    expectRejected((j) => (j.model.merges[0] = "Ġ t h"), "not two tokens");
    expectRejected((j) => (j.model.merges = "Ġ t"), "model.merges: expected a list");
  });

  test("the model's shape: missing, vocab of the wrong kind, unk_token not in the vocab", () => {
    expectRejected((j) => delete j.model, "model: expected an object");
    expectRejected((j) => (j.model.vocab = [["a", 0]]), "model.vocab: expected an object of token -> id for BPE");
    expectRejected((j) => (j.model.vocab = null), "model.vocab");
    expectRejected((j) => (j.model.unk_token = "<nope>"), 'model.unk_token: "<nope>" is not in the vocab');
    const e = (() => {
      try {
        tokenizerFromJSON([1, 2], {}, "auto", FILE);
      } catch (e) {
        return e as Error;
      }
    })();
    expect(e?.message).toContain("(root): expected a JSON object, got a list");
  });

  test("post-processor ids must be tokens of the file", () => {
    const template = (ids: number[], name = "<|endoftext|>") => ({
      type: "TemplateProcessing",
      single: [{ Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: name, type_id: 0 } }],
      pair: [],
      special_tokens: { "<|endoftext|>": { id: "<|endoftext|>", ids, tokens: ["<|endoftext|>"] } },
    });
    expectRejected((j) => (j.post_processor = template([1e9])), "post_processor.special_tokens.<|endoftext|>.ids: 1000000000");
    expectRejected((j) => (j.post_processor = template([0], "<missing>")), 'special token "<missing>" is not in special_tokens');
    expectRejected((j) => (j.post_processor = { type: "RobertaProcessing", sep: ["</s>", 9999], cls: ["<s>", 0] }), "post_processor.sep");
    const ok = structuredClone(base);
    ok.post_processor = template([0]);
    expect(tokenizerFromJSON(ok, config, "auto", FILE).encode("the").at(-1)).toBe(0);
  });

  test("Split patterns: missing, and regexes with nested quantifiers", () => {
    const split = (j: Json) => j.pre_tokenizer.pretokenizers[0];
    expectRejected((j) => (split(j).pattern = {}), "pre_tokenizer.pretokenizers[0].pattern");
    expectRejected((j) => (split(j).pattern = { Regex: "(\\p{L}+)+!" }), "pre_tokenizer.pretokenizers[0].pattern.Regex", "nested", "backtrack");
  });

  test("Unigram: entries must be [piece, score], pieces unique, unk_id in range", () => {
    const unigram = (vocab: Json, unk_id: Json = 0): Json => ({
      added_tokens: [],
      normalizer: null,
      post_processor: null,
      model: { type: "Unigram", unk_id, vocab },
      pre_tokenizer: { type: "Metaspace", replacement: "▁", prepend_scheme: "always" },
      decoder: { type: "Metaspace", replacement: "▁", prepend_scheme: "always" },
    });
    const good = [["<unk>", 0], ["▁a", -1], ["b", -2]];
    const tok = tokenizerFromJSON(unigram(good), {}, "auto", FILE);
    expect(tok.vocabSize).toBe(3);
    for (const [vocab, unk, msg] of [
      [[["<unk>", 0], ["▁a", "x"]], 0, 'model.vocab[1]: expected a [piece, score] pair, got ["▁a","x"]'],
      [[["<unk>", 0], ["▁a", -1], ["▁a", -2]], 0, 'piece "▁a" is listed twice'],
      [good, 7, "model.unk_id: 7 is not an id of the 3 pieces"],
      [{ a: 1 }, 0, "model.vocab: expected a list of [piece, score] pairs"],
    ] as [Json, Json, string][]) {
      expect(() => tokenizerFromJSON(unigram(vocab, unk), {}, "auto", FILE)).toThrow(msg);
    }
  });

  test("files that are not JSON, truncated, or nested 100k deep name their path", async () => {
    const cases: [string, string][] = [
      ["garbage", "not json at all"],
      ["truncated", JSON.stringify(base).slice(0, 5000)],
      ["deep", "[".repeat(100_000) + "]".repeat(100_001)],
      ["empty", ""],
    ];
    for (const [name, text] of cases) {
      const dir = join(tmp, name);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, "tokenizer.json"), text);
      await expect(loadTokenizer(dir)).rejects.toThrow(`${join(dir, "tokenizer.json")} is not valid JSON`);
    }
  });

  test("the nested-quantifier detector: real pre-tokenizer patterns pass, repeated quantified groups do not", () => {
    for (const p of [GPT2_PATTERN, LLAMA3_PATTERN, QWEN2_PATTERN, "(a|b)+", "(?:a{2,5}){3}", "[(+]+", "(\\d+)?", "(?i:'s|'t)+"])
      expect(nestedQuantifier(p)).toBeUndefined();
    expect(nestedQuantifier("(a+)+b")).toBe("(a+)+");
    expect(nestedQuantifier("x(?:\\s*y)*")).toBe("(?:\\s*y)*");
    expect(nestedQuantifier("((a+))+")).toBe("((a+))+");
    expect(nestedQuantifier("(?:a{2,}){3}")).toBe("(?:a{2,}){3}");
    expect(nestedQuantifier("(x+x+)+y")).toBe("(x+x+)+");
  });

  // JavaScriptCore cannot interrupt a running regex, so the guard runs the load + encode in a child
  // process and kills it after a few seconds: a hang fails the test instead of hanging the suite.
  test("a catastrophically backtracking Split regex is refused, not run (hang guard: child process)", async () => {
    const dir = join(tmp, "redos");
    await mkdir(dir, { recursive: true });
    const json = structuredClone(base);
    json.pre_tokenizer.pretokenizers[0].pattern = { Regex: "(a+)+b" }; // accepted by the kiln translator
    await writeFile(join(dir, "tokenizer.json"), JSON.stringify(json));
    const script = `const { loadTokenizer } = await import(${JSON.stringify(join(import.meta.dir, "../../src/data/tokenizer.ts"))});
      try { const t = await loadTokenizer(${JSON.stringify(dir)}); t.encode("a".repeat(200) + "!"); console.log("ENCODED"); }
      catch (e) { console.log("REFUSED " + e.message); }`;
    const child = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => child.kill(9), 20_000);
    const out = await new Response(child.stdout).text();
    clearTimeout(timer);
    expect(await child.exited).toBe(0);
    expect(out).toContain("REFUSED");
    expect(out).toContain("(a+)+");
  });
});

describe("tokenizer.json fuzz", () => {
  test("400 mutated files: each loads and stays in range, or fails with an Error naming the file", () => {
    let seed = 20261206;
    const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)];
    const VALUES: unknown[] = [1e9, -1, 0, 3.5, "x", null, [], {}, true, 2 ** 31, "Banana", ["a", "b"], "a b", 640, 639];
    /** Every (container, key) of the tree, for picking a spot to damage. */
    const spots = (j: Json): [Json, string | number][] => {
      const out: [Json, string | number][] = [];
      const walk = (x: Json, depth: number) => {
        if (depth > 6 || x === null || typeof x !== "object") return;
        const keys: (string | number)[] = Array.isArray(x) ? x.map((_, i) => i) : Object.keys(x);
        // sample big containers (the vocab, the merges) instead of listing every entry
        for (const k of keys.length > 40 ? Array.from({ length: 40 }, () => pick(keys)) : keys) {
          out.push([x, k]);
          walk(x[k], depth + 1);
        }
      };
      walk(j, 0);
      return out;
    };
    let loaded = 0;
    let refused = 0;
    for (let n = 0; n < 400; n++) {
      const json = structuredClone(base);
      const mutations = 1 + Math.floor(rnd() * 3);
      for (let m = 0; m < mutations; m++) {
        const [obj, key] = pick(spots(json));
        const r = rnd();
        if (r < 0.5) obj[key] = structuredClone(pick(VALUES));
        else if (r < 0.7) delete obj[key];
        else if (r < 0.85 && typeof obj[key] === "number") obj[key] = obj[key] + pick([1, -1, 1000, 1e6]);
        else if (typeof obj[key] === "string") obj[key] = obj[key] + pick(["", "x", " ", "Ġ"]);
        else obj[key] = pick(VALUES);
      }
      let tok;
      try {
        tok = tokenizerFromJSON(json, config, "auto", FILE);
      } catch (e) {
        expect(e).toBeInstanceOf(Error);
        const message = (e as Error).message;
        if (!message.includes(FILE) && !(e as Error).constructor.name.includes("Unsupported")) throw e;
        refused++;
        continue;
      }
      loaded++;
      expect(tok.vocabSize).toBeLessThan(2 * 640 + 1024 + 1);
      let ids: number[] = [];
      try {
        ids = tok.encode("the cat and the dog, 12 <|endoftext|>");
      } catch (e) {
        // encode may refuse a character the damaged vocabulary lacks, but in words, not a crash
        expect((e as Error).message).toMatch(/tokenizer|vocab|character/);
      }
      for (const id of ids) expect(id >= 0 && id < tok.vocabSize).toBe(true);
    }
    expect(loaded).toBeGreaterThan(20);
    expect(refused).toBeGreaterThan(100);
  });
});
