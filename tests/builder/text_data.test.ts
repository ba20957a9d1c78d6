import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { TextDataset, readTokenFile } from "../../src/builder/text_dataset.ts";
import { tokenizeFile } from "../../src/builder/tokenize_file.ts";
import { loadTokenizer, tokenizerFromJSON } from "../../src/data/tokenizer.ts";
import { tokenFileWindows } from "../../src/train/streams.ts";

const ROOT = resolve(import.meta.dir, "../..");
const TOK = join(ROOT, "tests/fixtures/tokenizers/shakespeare_llama3");
const dir = mkdtempSync(join(tmpdir(), "kiln-textdata-"));

async function kiln(...args: string[]) {
  const proc = Bun.spawn([process.execPath, join(ROOT, "src/cli/main.ts"), ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { stdout, stderr, code };
}

describe("TextDataset", () => {
  test("windows, stride and the train/val split", async () => {
    const tokens = Int32Array.from({ length: 100 }, (_, i) => i);
    const ds = new TextDataset(tokens, { blockSize: 8, stride: 4, trainSplit: 0.5 });
    expect(ds.train.length).toBe(Math.floor((50 - 9) / 4) + 1);
    expect(Array.from(ds.train.get(1).x)).toEqual([4, 5, 6, 7, 8, 9, 10, 11]);
    expect(Array.from(ds.train.get(1).y)).toEqual([5, 6, 7, 8, 9, 10, 11, 12]);
    expect(ds.val.get(0).x[0]).toBe(50);
    expect(() => ds.train.get(ds.train.length)).toThrow(/out of range/);
    expect(() => new TextDataset(tokens, { blockSize: 200 })).toThrow(/no train window of blockSize 200/);
  });
  test("sample(n): n windows spread evenly over a split, the same each time; the split itself when n covers it", () => {
    const tokens = Int32Array.from({ length: 1000 }, (_, i) => i);
    const ds = new TextDataset(tokens, { blockSize: 4, trainSplit: 0.5 });
    expect(ds.val.length).toBe(124);
    const s = ds.val.sample(4);
    expect(s.length).toBe(4);
    // windows 0, 31, 62, 93 of the val split (which starts at token 500)
    expect([0, 1, 2, 3].map((i) => s.get(i).x[0])).toEqual([500, 624, 748, 872]);
    expect(Array.from(s.get(1).y)).toEqual([625, 626, 627, 628]);
    expect(ds.val.sample(124)).toBe(ds.val);
    expect(ds.val.sample(1000)).toBe(ds.val);
    expect(() => ds.val.sample(0)).toThrow(/positive integer/);
  });
  test("texts are tokenized with eos between documents", async () => {
    const tok = await loadTokenizer(TOK);
    const ds = new TextDataset(["To be, or not to be", "that is the question"], { blockSize: 4, tokenizer: tok, trainSplit: 1 });
    const expected = [...tok.encode("To be, or not to be"), ...(tok.eosTokenId !== undefined ? [tok.eosTokenId] : []), ...tok.encode("that is the question")];
    expect(Array.from(ds.tokens)).toEqual(expected);
    expect(() => new TextDataset(["x"], { blockSize: 4 })).toThrow(/need a tokenizer/);
  });
});

describe("kiln data tokenize / load", () => {
  test("streamed .bin equals whole-text encoding, and TextDataset reads it memory-mapped", async () => {
    const tok = await loadTokenizer(TOK);
    const corpus = readFileSync(join(ROOT, "tests/fixtures/tokenizer_corpus.txt"), "utf8");
    const input = join(dir, "corpus.txt");
    writeFileSync(input, corpus);
    // small chunks: many cuts, including inside multi-byte characters
    const r = await tokenizeFile(tok, input, join(dir, "small.bin"), { chunkBytes: 97 });
    const whole = tok.encode(corpus);
    expect(r.tokens).toBe(whole.length);
    expect(Array.from(readTokenFile(join(dir, "small.bin")))).toEqual(whole);
    const cli = await kiln("data", "tokenize", "--tokenizer", TOK, "--input", input, "--output", join(dir, "cli.bin"));
    expect(cli.code).toBe(0);
    expect(readFileSync(join(dir, "cli.bin"))).toEqual(readFileSync(join(dir, "small.bin")));
    expect(JSON.parse(readFileSync(join(dir, "cli.bin.json"), "utf8"))).toMatchObject({ dtype: "uint16", tokens: whole.length });
    const ds = new TextDataset(join(dir, "cli.bin"), { blockSize: 16 });
    expect(Array.from(ds.get(0).x)).toEqual(whole.slice(0, 16));
  });
  test("chunk cuts never change the ids: blank lines, indented lines, trailing spaces, for GPT-2, Llama 3 and Qwen2 patterns", async () => {
    // GPT-2's \s+(?!\S) takes "\n\n" whole at the end of a text but splits it before a letter: a cut
    // after a blank line would change the ids
    const lines = ["To be, or not to be:", "", "", "that is the question.", "  Whether 'tis nobler", "in the mind ", "\tto suffer", "", "The slings; and arrows!", "x", "Y", "", " ", "end."];
    const text = Array.from({ length: 12 }, (_, k) => lines.slice(k % 5).concat(lines.slice(0, k % 5)).join("\n")).join("\n\n") + "\n";
    const input = join(dir, "cuts.txt");
    writeFileSync(input, text);
    for (const name of ["rust_trained_corpus", "shakespeare_llama3", "shakespeare_qwen2"]) {
      // with "\n\n" and "\n\n\n" merged first (as in GPT-2's vocabulary), so the whitespace runs' ids show
      const json = JSON.parse(readFileSync(join(ROOT, "tests/fixtures/tokenizers", name, "tokenizer.json"), "utf8"));
      const vocab = json.model.vocab as Record<string, number>;
      let next = Math.max(...Object.values(vocab), ...json.added_tokens.map((t: { id: number }) => t.id)) + 1;
      for (const t of ["ĊĊ", "ĊĊĊ"]) vocab[t] ??= next++;
      const pair = (a: string, b: string) => (typeof json.model.merges[0] === "string" ? `${a} ${b}` : [a, b]);
      json.model.merges.unshift(pair("Ċ", "Ċ"), pair("ĊĊ", "Ċ"));
      const tok = tokenizerFromJSON(json, {}, "kiln");
      const whole = tok.encode(text, { addSpecialTokens: false });
      expect(whole).toContain(vocab["ĊĊ"]);
      for (const chunkBytes of [7, 23, 64]) {
        const r = await tokenizeFile(tok, input, join(dir, `cuts_${name}.bin`), { chunkBytes });
        expect({ name, chunkBytes, ids: Array.from(readTokenFile(join(dir, `cuts_${name}.bin`))) }).toEqual({ name, chunkBytes, ids: whole });
        expect(r.tokens).toBe(whole.length);
      }
    }
  });
  test("worker threads: many small chunks, written in order, equal to the whole-text encoding", async () => {
    const tok = await loadTokenizer(TOK);
    const corpus = readFileSync(join(ROOT, "tests/fixtures/tokenizer_corpus.txt"), "utf8");
    const text = [corpus, corpus.toUpperCase(), "Ünïcödé — ✓ 漢字\n", corpus].join("\n");
    const input = join(dir, "threads.txt");
    writeFileSync(input, text);
    const r = await tokenizeFile(TOK, input, join(dir, "threads.bin"), { threads: 3, chunkBytes: 61 });
    expect(r.threads).toBe(3);
    const whole = tok.encode(text, { addSpecialTokens: false });
    expect(r.tokens).toBe(whole.length);
    expect(Array.from(readTokenFile(join(dir, "threads.bin")))).toEqual(whole);
    // a bad byte far into the file: named by its offset in the file, not in its chunk
    const bad = Buffer.concat([Buffer.from(text), Buffer.from([0x61, 0xc3, 0x28, 0x0a])]);
    writeFileSync(join(dir, "threads_bad.txt"), bad);
    await expect(tokenizeFile(TOK, join(dir, "threads_bad.txt"), join(dir, "threads_bad.bin"), { threads: 2, chunkBytes: 61 })).rejects.toThrow(`is not UTF-8 text: invalid byte at offset ${Buffer.byteLength(text) + 1}`);
  });
  test("a vocabulary over 65,536 writes uint32 ids that every reader reads back", async () => {
    // the fixture tokenizer with every id moved up by 65,600 (the gap filled with unused tokens):
    // its ids are the fixture's + 65,600, none fits 16 bits
    const SHIFT = 65_600;
    const json = JSON.parse(readFileSync(join(TOK, "tokenizer.json"), "utf8"));
    const vocab: Record<string, number> = {};
    for (let i = 0; i < SHIFT; i++) vocab[`<unused_${i}>`] = i;
    for (const [t, id] of Object.entries(json.model.vocab as Record<string, number>)) vocab[t] = id + SHIFT;
    json.model.vocab = vocab;
    for (const t of json.added_tokens) t.id += SHIFT;
    const big = join(dir, "big_tok");
    mkdirSync(big, { recursive: true });
    writeFileSync(join(big, "tokenizer.json"), JSON.stringify(json));
    writeFileSync(join(big, "tokenizer_config.json"), readFileSync(join(TOK, "tokenizer_config.json")));
    const small = await loadTokenizer(TOK);
    const tok = await loadTokenizer(big);
    expect(tok.vocabSize).toBeGreaterThan(65_536);
    const corpus = readFileSync(join(ROOT, "tests/fixtures/tokenizer_corpus.txt"), "utf8");
    const input = join(dir, "corpus32.txt");
    writeFileSync(input, corpus);
    const expected = small.encode(corpus).map((id) => id + SHIFT);
    expect(tok.encode(corpus)).toEqual(expected);
    const cli = await kiln("data", "tokenize", "--tokenizer", big, "--input", input, "--out", join(dir, "big.bin"));
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain("(uint32)");
    expect(JSON.parse(readFileSync(join(dir, "big.bin.json"), "utf8"))).toMatchObject({ dtype: "uint32", vocabSize: tok.vocabSize, tokens: expected.length });
    expect(readFileSync(join(dir, "big.bin")).length).toBe(expected.length * 4);
    const mapped = readTokenFile(join(dir, "big.bin"));
    expect(mapped).toBeInstanceOf(Uint32Array);
    expect(Array.from(mapped)).toEqual(expected);
    const ds = new TextDataset(join(dir, "big.bin"), { blockSize: 16 });
    expect(Array.from(ds.get(1).y)).toEqual(expected.slice(17, 33));
    const windows = await Array.fromAsync(tokenFileWindows(join(dir, "big.bin"), { blockSize: 16 })());
    expect(Array.from(windows[1].x)).toEqual(expected.slice(16, 32));
    // the same text through the 16-bit tokenizer: uint16, read back the same way
    const r16 = await tokenizeFile(small, input, join(dir, "small16.bin"));
    expect(r16.dtype).toBe("uint16");
    expect(readTokenFile(join(dir, "small16.bin"))).toBeInstanceOf(Uint16Array);
    expect(Array.from((await Array.fromAsync(tokenFileWindows(join(dir, "small16.bin"), { blockSize: 16 })()))[1].x)).toEqual(expected.slice(16, 32).map((id) => id - SHIFT));
  });
  test("non-UTF-8 input is refused with the offset", async () => {
    writeFileSync(join(dir, "bad.txt"), Buffer.from([0x61, 0x62, 0xff, 0x63]));
    const r = await kiln("data", "tokenize", "--tokenizer", TOK, "--input", join(dir, "bad.txt"), "--out", join(dir, "bad.bin"));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("not UTF-8 text: invalid byte at offset 2");
    const noTok = await kiln("data", "tokenize", "--tokenizer", join(dir, "no-such-tokenizer"), "--input", join(dir, "bad.txt"), "--out", join(dir, "bad.bin"));
    expect(noTok.code).toBe(2);
    expect(noTok.stderr.trim()).toBe(`kiln data: --tokenizer ${join(dir, "no-such-tokenizer")}: ${join(dir, "no-such-tokenizer")} has neither tokenizer.json nor vocab.json + merges.txt`);
  });
  test("kiln data load writes the kept documents and a per-file report", async () => {
    const raw = join(dir, "raw");
    mkdirSync(join(raw, "x"), { recursive: true });
    const text = "one document about the sea and its many moods through the long seasons of the year";
    writeFileSync(join(raw, "a.txt"), text);
    writeFileSync(join(raw, "x/b.txt"), text);
    writeFileSync(join(raw, "x/c.md"), "another  document\u0000 entirely");
    writeFileSync(join(raw, "x/d.png"), "png");
    const r = await kiln("data", "load", "--input", raw, "--output", join(dir, "data.txt"), "--clean", "--dedupe", "--min-length", "5");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("skipped x/b.txt (duplicate of a.txt)");
    expect(r.stdout).toContain("skipped x/d.png (unsupported type .png)");
    expect(r.stdout).toContain("2 document(s) kept; removed: 1 exact duplicate(s)");
    expect(readFileSync(join(dir, "data.txt"), "utf8")).toBe(`${text}\n\nanother document entirely\n`);
    const none = await kiln("data", "load", "--input", join(dir, "missing"), "--out", join(dir, "o.txt"));
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("--input");
  });
  test("kiln tokenizer train --input reads a documents folder", async () => {
    const raw = join(dir, "tokraw");
    mkdirSync(raw, { recursive: true });
    writeFileSync(join(raw, "a.txt"), readFileSync(join(ROOT, "tests/fixtures/tokenizer_corpus.txt"), "utf8"));
    writeFileSync(join(raw, "b.html"), "<p>the the the the</p><script>zzzzqqqq zzzzqqqq zzzzqqqq</script>");
    const r = await kiln("tokenizer", "train", "--input", raw, "--vocab-size", "300", "--output", join(dir, "tok"));
    expect(r.code).toBe(0);
    const tok = await loadTokenizer(join(dir, "tok"));
    expect(tok.vocabSize).toBe(300);
    expect(tok.tokenToId("zz")).toBeUndefined(); // script text is not trained on
  });
});
