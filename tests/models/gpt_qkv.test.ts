// GPT attention on the packed c_attn output (ops.qkvAttention: q, k, v read in place, dqkv written
// directly) against the split copies it replaced (gptAttention.packedQkv = false): the same logits
// (1e-5) and c_attn gradients (1e-5) on every backend, and the same losses over 50 training steps
// with dropout 0.1 (1e-4) on wasm with 1 and 2 threads. The GPT-2 PyTorch fixtures (gpt.test.ts) run
// the packed path.
import { afterEach, describe, expect, test } from "bun:test";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { createComputeBackend } from "../../src/backend/registry.ts";
import { TokenDataset } from "../../src/data/dataset.ts";
import { CharTokenizer } from "../../src/data/tokenizer.ts";
import { GPT, gptAttention } from "../../src/models/gpt.ts";
import { scope } from "../../src/tensor/memory.ts";
import { seed } from "../../src/tensor/random.ts";
import { fromArray, useBackend } from "../../src/tensor/tensor.ts";
import { Trainer } from "../../src/train/trainer.ts";
import { backendNames, getBackend } from "../backends.ts";

afterEach(() => {
  gptAttention.packedQkv = true;
});

const config = { vocabSize: 37, blockSize: 16, nLayer: 2, nHead: 4, nEmbd: 32 };

describe.each(backendNames)("GPT attention on packed qkv on %s", (name) => {
  test("logits and the c_attn gradients equal the split path's", async () => {
    useBackend(await getBackend(name));
    const run = async (packed: boolean) => {
      gptAttention.packedQkv = packed;
      seed(7);
      const model = new GPT(config);
      const ids = fromArray(Array.from({ length: 3 * 13 }, (_, i) => (i * 7 + 3) % 37), [3, 13], { dtype: "i32" });
      const targets = fromArray(Array.from({ length: 3 * 13 }, (_, i) => (i * 5 + 1) % 37), [3, 13], { dtype: "i32" });
      const logits = scope(() => {
        const out = model.forward(ids);
        model.loss(ids, targets).backward();
        return out;
      });
      const grads = model.transformer.h.items.map((b) => b.attn.c_attn.weight.grad!);
      const out = { logits: await logits.data(), grads: await Promise.all(grads.map((g) => g.data())) };
      for (const t of [ids, targets, logits]) t.dispose();
      model.dispose();
      return out;
    };
    const packed = await run(true), split = await run(false);
    expect(packed.logits).toBeAllClose(split.logits, { atol: 1e-5, rtol: 1e-5 });
    for (let l = 0; l < packed.grads.length; l++) expect(packed.grads[l]).toBeAllClose(split.grads[l], { atol: 1e-5, rtol: 1e-4 });
  });
});

describe("GPT training on packed qkv", () => {
  test("50 steps (dropout 0.1) give the split path's losses within 1e-4, on 1 and 2 threads", async () => {
    const text = (await readFile(join(import.meta.dir, "..", "..", "data", "tinyshakespeare.txt"), "utf8")).slice(0, 200_000);
    const tokenizer = CharTokenizer.fromText(text);
    const data = new TokenDataset(Int32Array.from(tokenizer.encode(text)), 32);
    for (const threads of [1, 2]) {
      const losses = async (packed: boolean) => {
        gptAttention.packedQkv = packed;
        const backend = await createComputeBackend("wasm", { threads });
        useBackend(backend);
        seed(1337);
        const model = new GPT({ vocabSize: tokenizer.vocabSize, blockSize: 32, nLayer: 2, nHead: 4, nEmbd: 64, dropout: 0.1 });
        const trainer = new Trainer({
          model, data, progress: false, outDir: null,
          args: { iters: 50, batchSize: 8, evalInterval: 0, finalEvalIters: 1, seed: 1337 },
        });
        const result = await trainer.fit();
        trainer.optimizer.dispose();
        model.dispose();
        backend.dispose();
        return result.lossHistory;
      };
      const packed = await losses(true), split = await losses(false);
      expect(packed.length).toBe(50);
      expect(packed).toBeAllClose(split, { atol: 1e-4, rtol: 0 });
      expect(packed[49]).toBeLessThan(packed[0] - 0.5);
    }
  }, 300_000);
});
