// The public API (src/index.ts) as a user imports it, and the examples that use it.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import * as kiln from "../src/index.ts";

const ROOT = join(import.meta.dir, "..");

describe("public API", () => {
  test("exports every layer's entry points", () => {
    const names = [
      "createComputeBackend", "backends", "init", "tensor", "randn", "scope", "keep", "noGrad", "checkGradients", "checkGradientsAsync",
      "Module", "Linear", "Embedding", "LayerNorm", "RMSNorm", "AdamW", "clipGradNorm", "warmupCosine",
      "GPT", "LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM", "KVCache", "createModel",
      "loadPretrained", "savePretrained", "loadModelConfig", "generate", "stream",
      "CharTokenizer", "loadTokenizer", "trainBpe", "ChatTemplate", "TokenDataset",
      "readSafetensors", "writeSafetensors", "saveCheckpoint", "loadCheckpoint", "Trainer",
    ] as const;
    const missing = names.filter((n) => typeof (kiln as Record<string, unknown>)[n] === "undefined");
    expect(missing).toEqual([]);
  });

  test("createComputeBackend(name, { seed }) seeds the RNG as kiln.seed does", async () => {
    const backend = await kiln.createComputeBackend("wasm", { seed: 7 });
    const a = await kiln.randn([5], { backend }).data();
    kiln.seed(7);
    const b = await kiln.randn([5], { backend }).data();
    await kiln.createComputeBackend("wasm", { seed: 8 }).then((other) => other.dispose());
    const c = await kiln.randn([5], { backend }).data();
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(c)).not.toEqual(Array.from(a));
    backend.dispose();
  });

  test("loadPretrained + generate through the public API give the fixture's greedy tokens", async () => {
    const backend = await kiln.createComputeBackend("wasm", { seed: 0 });
    const dir = join(ROOT, "tests/fixtures/hf/llama");
    const ref = await kiln.readSafetensors(join(dir, "reference.safetensors"));
    const [B, T] = ref.info("input_ids").shape;
    const G = ref.info("greedy_tokens").shape.at(-1)!;
    const ids = (await ref.read("input_ids")) as Int32Array;
    const greedy = (await ref.read("greedy_tokens")) as Int32Array;
    expect(B).toBeGreaterThan(0);
    const prompt = Array.from(ids.subarray(0, T)); // batch row 0
    const expected = Array.from(greedy.subarray(0, G));
    const { model } = await kiln.loadPretrained(dir, { backend });
    const out = await kiln.generate(model, null, prompt, { maxNewTokens: expected.length, stopTokens: [] });
    expect(out.tokens).toEqual(expected);
    model.dispose();
    backend.dispose();
  });
});

describe("examples", () => {
  for (const [script, expectText] of [
    ["examples/xor.ts", /predictions:/], ["examples/generate.ts", /decode steps/],
    ["examples/train_classifier.ts", /val accuracy 0\.9\d+/], ["examples/generic_trainer.ts", /batches per loader: \{"(cls|reg)":\d+,"(cls|reg)":\d+\}/],
  ] as const) {
    test(`bun ${script} runs`, () => {
      const p = Bun.spawnSync([process.execPath, join(ROOT, script), ...(/xor|train/.test(script) ? ["wasm"] : [])], { cwd: ROOT, env: { ...process.env, KILN_BACKEND: "wasm" } });
      expect(p.exitCode).toBe(0);
      expect(p.stdout.toString()).toMatch(expectText);
    }, 60_000);
  }
});
