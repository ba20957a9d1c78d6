// Backends agree on a whole training run: 20 steps of the default baby GPT (4 layers, 4 heads,
// 128 wide, context 64, batch 12) from the same seed give the same losses (within 1e-4) on
// wasm and on webgpu. Skipped when this machine has no WebGPU adapter (CI installs one).

import { describe, expect, test } from "bun:test";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { GPT } from "../../src/models/gpt.ts";
import { TokenDataset } from "../../src/data/dataset.ts";
import { CharTokenizer } from "../../src/data/tokenizer.ts";
import { Trainer } from "../../src/train/trainer.ts";
import { seed } from "../../src/tensor/random.ts";
import { useBackend } from "../../src/tensor/tensor.ts";
import { backendNames, getBackend } from "../backends.ts";

const text = await readFile(join(import.meta.dir, "..", "..", "data", "tinyshakespeare.txt"), "utf8");
const tokenizer = CharTokenizer.fromText(text);
const data = new TokenDataset(Int32Array.from(tokenizer.encode(text)), 64);

async function losses(backendName: string): Promise<number[]> {
  useBackend(await getBackend(backendName));
  seed(1337);
  const model = new GPT({ vocabSize: tokenizer.vocabSize, blockSize: 64, nLayer: 4, nHead: 4, nEmbd: 128 });
  const trainer = new Trainer({
    model, data, progress: false, outDir: null,
    args: { iters: 20, batchSize: 12, evalInterval: 0, finalEvalIters: 1, seed: 1337 },
  });
  const result = await trainer.fit();
  trainer.optimizer.dispose();
  model.dispose();
  return result.lossHistory;
}

describe.skipIf(!backendNames.includes("webgpu"))("wasm and webgpu", () => {
  test("20 baby-GPT training steps give the same losses within 1e-4", async () => {
    const onWasm = await losses("wasm");
    const onGpu = await losses("webgpu");
    expect(onWasm.length).toBe(20);
    expect(onGpu).toBeAllClose(onWasm, { atol: 1e-4, rtol: 0 });
    expect(onWasm[19]).toBeLessThan(onWasm[0]);
  }, 300_000);
});
