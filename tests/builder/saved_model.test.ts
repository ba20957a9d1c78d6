import { beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { buildModel, loadConfig } from "../../src/builder/index.ts";
import { evaluateModel } from "../../src/builder/evaluate.ts";
import { generateText, loadSavedModel, saveModel } from "../../src/builder/saved_model.ts";
import { loadTokenizer } from "../../src/data/tokenizer.ts";
import { useBackend } from "../../src/tensor/tensor.ts";
import { getBackend } from "../backends.ts";

const ROOT = resolve(import.meta.dir, "../..");
const TOK = join(ROOT, "tests/fixtures/tokenizers/shakespeare_llama3");
const dir = mkdtempSync(join(tmpdir(), "kiln-saved-"));
beforeAll(async () => useBackend(await getBackend("wasm")));

async function kiln(...args: string[]) {
  const proc = Bun.spawn([process.execPath, join(ROOT, "src/cli/main.ts"), ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe", env: { ...process.env, KILN_BACKEND: "wasm" } });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { stdout, stderr, code };
}

describe("saveModel / loadSavedModel / generateText / evaluate", () => {
  test("config and metrics travel in __metadata__; mismatches are refused", async () => {
    const tok = await loadTokenizer(TOK);
    const config = await loadConfig({ preset: "tiny", model: { vocabSize: tok.vocabSize, modelType: "llama", bias: false, dropout: 0 } });
    const model = buildModel(config.model, { log: false });
    const out = join(dir, "m");
    await saveModel(model, out, { metadata: { config, metrics: { finalLoss: 3.25 } }, tokenizerDir: TOK });
    const saved = await loadSavedModel(out);
    expect(saved.metrics).toEqual({ finalLoss: 3.25 });
    expect((saved.trainingConfig as { model: { numLayers: number } }).model.numLayers).toBe(2);
    expect(saved.tokenizer?.vocabSize).toBe(tok.vocabSize);
    const [a, b] = [model.parameters()[0], saved.model.parameters()[0]];
    expect(Array.from(await b.data())).toEqual(Array.from(await a.data()));
    saved.model.dispose();

    // a config that does not describe these weights
    const other = join(dir, "m2");
    const bad = await loadConfig({ preset: "tiny", model: { vocabSize: tok.vocabSize, modelType: "llama", bias: false, numLayers: 3 } });
    await saveModel(model, other, { metadata: { config: bad }, tokenizerDir: TOK });
    await expect(loadSavedModel(other)).rejects.toThrow(/saved training config says model\.numLayers 3, the weights have 2/);
    // a tokenizer bigger than the vocabulary
    const small = buildModel({ ...config.model, vocabSize: 200 }, { log: false });
    await saveModel(small, join(dir, "small"));
    small.dispose();
    await expect(loadSavedModel(join(dir, "small"), { tokenizerDir: TOK })).rejects.toThrow(/the tokenizer has 640 tokens, the model's vocabulary 200/);
    // a second model (another init) for --compare
    const second = buildModel(config.model, { log: false });
    await saveModel(second, join(dir, "m3"), { tokenizerDir: TOK });
    second.dispose();

    const r = await generateText({ modelPath: out, prompt: "To be", maxNewTokens: 5, options: { doSample: false } });
    expect(r.tokens?.length ?? r.text.length).toBeGreaterThan(0);

    const tokens = Int32Array.from(tok.encode(readFileSync(join(ROOT, "tests/fixtures/tokenizer_corpus.txt"), "utf8")));
    const e = await evaluateModel(model, tokens, { blockSize: 32, batchSize: 4, maxBatches: 2 });
    expect(e.tokens).toBe(2 * 4 * 32);
    // an untrained model is near uniform: loss ≈ ln(vocab)
    expect(Math.abs(e.loss - Math.log(tok.vocabSize))).toBeLessThan(0.5);
    expect(e.perplexity).toBeCloseTo(Math.exp(e.loss), 6);
    model.dispose();
  });

  test("kiln model evaluate (with --compare) and kiln generate text", async () => {
    const out = join(dir, "m");
    const data = join(dir, "eval.txt");
    writeFileSync(data, readFileSync(join(ROOT, "tests/fixtures/tokenizer_corpus.txt"), "utf8").slice(0, 4000));
    const r = await kiln("model", "evaluate", "--model", out, "--data", data, "--compare", join(dir, "m3"), "--max-batches", "1", "--block-size", "16");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(2);
    for (const l of lines) expect(l).toMatch(/loss \d+\.\d{4}  perplexity \d+\.\d\d  128 tokens  \d+ tokens\/s/);
    const g = await kiln("generate", "text", "--model", out, "--tokenizer", TOK, "--prompt", "To be", "--max-new-tokens", "3");
    expect(g.code).toBe(0);
    const noTok = await kiln("generate", "text", "--model", out, "--tokenizer", join(dir, "nope"), "--prompt", "To be");
    expect(noTok.code).not.toBe(0);
    expect(noTok.stderr).toContain("nope");
    const bad = await kiln("model", "evaluate", "--model", out);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--model and --data are required");
  });
});
