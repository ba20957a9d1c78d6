import { beforeAll, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadSavedModel } from "../../src/builder/saved_model.ts";
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
