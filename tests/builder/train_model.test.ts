import { beforeAll, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadSavedModel } from "../../src/builder/saved_model.ts";
import { loadTokenizer } from "../../src/data/tokenizer.ts";
import { useBackend } from "../../src/tensor/tensor.ts";
import { getBackend } from "../backends.ts";

const ROOT = resolve(import.meta.dir, "../..");
const dir = mkdtempSync(join(tmpdir(), "kiln-train-model-"));
beforeAll(async () => useBackend(await getBackend("wasm")));

test("kiln train model: a structured config, a tokenizer trained on the data, an HF folder with metrics", async () => {
  const data = join(dir, "data.txt");
  writeFileSync(data, readFileSync(join(ROOT, "tests/fixtures/tokenizer_corpus.txt"), "utf8"));
  // a legacy nanoGPT config, migrated on the way in
  writeFileSync(join(dir, "old.json"), JSON.stringify({ n_layer: 1, n_head: 2, n_embd: 32, block_size: 32, vocab_size: 300, max_iters: 3, batch_size: 4, learning_rate: 1e-3, dropout: 0 }));
  const proc = Bun.spawn([process.execPath, join(ROOT, "src/cli/main.ts"), "train", "model", "--config", join(dir, "old.json"), "--data", data, "--output", join(dir, "model")], { cwd: ROOT, stdout: "pipe", stderr: "pipe", env: { ...process.env, KILN_BACKEND: "wasm" } });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  expect(code).toBe(0);
  expect(stderr).toContain("n_layer -> model.numLayers");
  expect(stdout).toContain("trained a BPE tokenizer: 300 tokens");
  expect(stdout).toMatch(/built a GPT-2-style model: [\d.]+K parameters/);
  expect(stdout).toMatch(/saved .*model: final loss \d+\.\d+.* after 3 steps/);
  const saved = await loadSavedModel(join(dir, "model"));
  expect(saved.metrics?.steps).toBe(3);
  expect(saved.tokenizer?.vocabSize).toBe(300);
  expect((saved.trainingConfig as { model: { numLayers: number } }).model.numLayers).toBe(1);
  saved.model.dispose();
});

const TOK = join(ROOT, "tests/fixtures/tokenizers/rust_trained_corpus");
async function kiln(args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  const proc = Bun.spawn([process.execPath, join(ROOT, "src/cli/main.ts"), ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe", env: { ...process.env, KILN_BACKEND: "wasm" } });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { stdout, stderr, code };
}

test("kiln train model --data data.bin: trains from a kiln data tokenize token file; the sidecar and tokenizer are checked", async () => {
  const text = join(dir, "bin.txt");
  writeFileSync(text, readFileSync(join(ROOT, "tests/fixtures/tokenizer_corpus.txt"), "utf8").repeat(4));
  const bin = join(dir, "data.bin");
  expect((await kiln(["data", "tokenize", "--tokenizer", TOK, "--input", text, "--output", bin])).code).toBe(0);
  const side = JSON.parse(readFileSync(bin + ".json", "utf8"));
  writeFileSync(join(dir, "bin.json"), JSON.stringify({
    model: { vocab_size: side.vocabSize, num_layers: 1, num_heads: 2, embedding_dim: 32, max_seq_length: 32, dropout: 0 },
    training: { batch_size: 4, learning_rate: 3e-3, max_steps: 30, eval_iters: 2, log_every: 1 },
  }));
  const out = join(dir, "bin-model");
  const run = await kiln(["train", "model", "--config", join(dir, "bin.json"), "--data", bin, "--tokenizer", TOK, "--out", out]);
  expect(run.stderr).toBe("");
  expect(run.code).toBe(0);
  expect(run.stdout).toMatch(/saved .*bin-model: final loss \d+\.\d+, val loss \d+\.\d+ after 30 steps/);
  const rows = readFileSync(join(out, "run/metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const losses = rows.filter((r) => typeof r.loss === "number").map((r) => r.loss as number);
  expect(losses.length).toBe(30);
  for (const l of losses) expect(Number.isFinite(l)).toBe(true);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  expect(mean(losses.slice(-5))).toBeLessThan(mean(losses.slice(0, 5)) - 0.3);
  expect(Number.isFinite(rows.find((r) => typeof r.val_loss === "number")?.val_loss)).toBe(true);
  const saved = await loadSavedModel(out);
  expect(saved.metrics?.steps).toBe(30);
  expect(saved.tokenizer?.vocabSize).toBe(side.vocabSize);
  saved.model.dispose();

  // another tokenizer than the one that wrote the file: one line naming both
  const other = join(ROOT, "tests/fixtures/tokenizers/shakespeare_qwen2");
  const otherVocab = (await loadTokenizer(other)).vocabSize;
  expect(otherVocab).not.toBe(side.vocabSize);
  const wrong = await kiln(["train", "model", "--config", join(dir, "bin.json"), "--data", bin, "--tokenizer", other, "--out", join(dir, "bin-wrong")]);
  expect(wrong.code).toBe(2);
  expect(wrong.stderr.trim().split("\n")).toHaveLength(1);
  expect(wrong.stderr).toContain(`${bin}.json says vocabSize ${side.vocabSize} but the tokenizer ${other} has ${otherVocab} tokens`);
  // a token file without its sidecar
  const bare = join(dir, "bare.bin");
  writeFileSync(bare, readFileSync(bin));
  const noSide = await kiln(["train", "model", "--config", join(dir, "bin.json"), "--data", bare, "--tokenizer", TOK, "--out", join(dir, "bin-bare")]);
  expect(noSide.code).toBe(2);
  expect(noSide.stderr.trim().split("\n")).toHaveLength(1);
  expect(noSide.stderr).toContain(`no ${bare}.json sidecar`);
  // no tokenizer
  const noTok = await kiln(["train", "model", "--config", join(dir, "bin.json"), "--data", bin, "--out", join(dir, "bin-notok")]);
  expect(noTok.code).toBe(2);
  expect(noTok.stderr).toContain("--tokenizer <dir> (the tokenizer that wrote it) is required");
});
