import { beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildModel, fixConfig, loadConfig, migrateLegacyConfig, PRESETS, validateConfig, toTrainingConfig, parseConfig } from "../../src/builder/index.ts";
import { useBackend, withoutInit } from "../../src/tensor/tensor.ts";
import { getBackend } from "../backends.ts";
import { TrainingConfig } from "../../src/train/training_config.ts";

beforeAll(async () => useBackend(await getBackend("wasm")));
const dir = mkdtempSync(join(tmpdir(), "kiln-builder-config-"));

describe("loadConfig", () => {
  test("a JSON file with snake_case sections", async () => {
    const file = join(dir, "c.json");
    writeFileSync(file, JSON.stringify({ model: { vocab_size: 300, num_layers: 2, num_heads: 2, embedding_dim: 32, max_seq_length: 16, model_type: "llama" }, training: { batch_size: 4, learning_rate: 0.01, num_epochs: 2 }, system: { seed: 7 } }));
    const c = await loadConfig(file);
    expect(c.model).toMatchObject({ vocabSize: 300, numLayers: 2, modelType: "llama", embeddingDim: 32 });
    expect(c.training).toMatchObject({ batchSize: 4, learningRate: 0.01, epochs: 2 });
    expect(c.system.randomSeed).toBe(7);
  });
  test("a YAML file, and errors that name the field and the value", async () => {
    const file = join(dir, "c.yaml");
    writeFileSync(file, "model:\n  num_layers: 2\n  dropout: 1.5\ntraining:\n  batch_size: -1\n");
    await expect(loadConfig(file)).rejects.toThrow(/model\.dropout: .*\(got 1\.5\)[\s\S]*training\.batchSize: .*\(got -1\)/);
    writeFileSync(file, "model:\n  num_layrs: 2\n");
    await expect(loadConfig(file)).rejects.toThrow(/numLayrs/);
  });
  test("a missing file and bad JSON are one line naming the file", async () => {
    await expect(loadConfig(join(dir, "nope.json"))).rejects.toThrow(/nope\.json: no such file/);
    writeFileSync(join(dir, "bad.json"), '{"model": {');
    await expect(loadConfig(join(dir, "bad.json"))).rejects.toThrow(/bad\.json: not valid JSON at line 1/);
  });
  test("presets, with overrides", async () => {
    const c = await loadConfig({ preset: "cpu_small", training: { max_steps: 5 } });
    expect(c.model.numLayers).toBe(4);
    expect(c.training.maxSteps).toBe(5);
    expect(c.training.batchSize).toBe(16);
    await expect(loadConfig({ preset: "huge" as never })).rejects.toThrow(/unknown preset "huge"; presets: tiny, cpu_small/);
  });
  test("save round-trips (JSON and YAML)", async () => {
    const c = await loadConfig({ preset: "tiny" });
    for (const name of ["saved.json", "saved.yaml"]) {
      await c.save(join(dir, name));
      expect((await loadConfig(join(dir, name))).toJSON()).toEqual(c.toJSON());
    }
  });
});

describe("legacy nanoGPT configs", () => {
  const legacy = { n_layer: 3, n_head: 4, n_embd: 64, block_size: 32, dropout: 0.1, bias: true, vocab_size: 65, device: "cpu", batch_size: 12, learning_rate: 1e-3, max_iters: 500, eval_interval: 50, eval_iters: 20, wandb_log: false };
  test("are migrated automatically with a notice listing what moved", async () => {
    const file = join(dir, "old.json");
    writeFileSync(file, JSON.stringify(legacy));
    const notices: string[] = [];
    const c = await loadConfig(file, { notice: (l) => notices.push(l) });
    expect(c.model).toMatchObject({ numLayers: 3, numHeads: 4, embeddingDim: 64, maxSeqLength: 32, dropout: 0.1, vocabSize: 65 });
    expect(c.training).toMatchObject({ batchSize: 12, learningRate: 1e-3, maxSteps: 500, evalEvery: 50, evalIters: 20 });
    expect(c.system.device).toBe("cpu");
    expect(notices).toHaveLength(1);
    expect(notices[0]).toContain("n_layer -> model.numLayers");
    expect(notices[0]).toContain("max_iters -> training.maxSteps");
    expect(notices[0]).toContain("left out (no kiln equivalent): wandb_log");
  });
  test("migrateLegacyConfig writes the sectioned file", async () => {
    const file = join(dir, "old2.json");
    writeFileSync(file, JSON.stringify({ ...legacy, bias: false }));
    const { notice } = await migrateLegacyConfig(file, join(dir, "new2.json"));
    expect(notice).toContain("bias false -> true");
    const written = JSON.parse(readFileSync(join(dir, "new2.json"), "utf8"));
    expect(written.model.numLayers).toBe(3);
    expect((await loadConfig(join(dir, "new2.json"), { notice: () => { throw new Error("no notice expected"); } })).training.maxSteps).toBe(500);
  });
});

describe("validateConfig / fixConfig", () => {
  test("finds and repairs embeddingDim, bias and vocab problems", () => {
    const c = parseConfig({ model: { embeddingDim: 100, numHeads: 6, vocabSize: 1000, bias: false } });
    const { isValid, errors } = validateConfig(c, { tokenizerVocabSize: 512 });
    expect(isValid).toBe(false);
    expect(errors.map((e) => e.field).sort()).toEqual(["model.bias", "model.embeddingDim", "model.vocabSize"]);
    const { config, fixes, remaining } = fixConfig(c, errors, { tokenizerVocabSize: 512 });
    expect(remaining).toEqual([]);
    expect(fixes.join("\n")).toContain("model.embeddingDim 100 -> 102");
    expect(config.model).toMatchObject({ embeddingDim: 102, vocabSize: 512, bias: true });
    expect(validateConfig(config, { tokenizerVocabSize: 512 }).isValid).toBe(true);
  });
  test("schema errors come back as problems, not throws", () => {
    const r = validateConfig({ model: { numLayers: 0 } } as never);
    expect(r.isValid).toBe(false);
    expect(r.errors[0].field).toBe("model.numLayers");
  });
  test("the training section maps onto the engine's TrainingConfig", async () => {
    const c = await loadConfig({ preset: "tiny" });
    const tc = new TrainingConfig(toTrainingConfig(c) as never);
    expect(tc.maxSteps).toBe(200);
    expect(tc.useLrSchedule).toBe(true);
  });
});

describe("buildModel", () => {
  test("gpt and llama from a small section, with the parameter count printed", () => {
    const lines: string[] = [];
    const gpt = buildModel({ vocabSize: 50, numLayers: 1, numHeads: 2, embeddingDim: 16, maxSeqLength: 8 }, { log: (l) => lines.push(l) });
    // wte 50*16 + wpe 8*16 + block (2*2*16 ln + 16*48+48 + 16*16+16 + 16*64+64 + 64*16+16) + ln_f 32
    expect(gpt.numParameters()).toBe(800 + 128 + (64 + 816 + 272 + 1088 + 1040) + 32);
    expect(lines[0]).toMatch(/GPT-2-style model: 4\.2K parameters/);
    const llama = buildModel({ model_type: "llama", vocab_size: 50, num_layers: 1, num_heads: 2, embedding_dim: 16, max_seq_length: 8 }, { log: false });
    expect(llama.family.name).toBe("llama");
    expect(() => buildModel({ embeddingDim: 10, numHeads: 3 }, { log: false })).toThrow(/model\.embeddingDim: 10 is not a multiple of model\.numHeads \(3\)/);
  });
  test.each(Object.keys(PRESETS))("preset %s builds", async (name) => {
    const c = await loadConfig({ preset: name as never });
    expect(validateConfig(c).isValid).toBe(true);
    const lines: string[] = [];
    const model = withoutInit(() => buildModel(c.model, { log: (l) => lines.push(l) }));
    expect(model.config.vocabSize).toBe(c.model.vocabSize);
    expect(lines[0]).toContain("parameters");
    // the documented size is the built one (to the digits the description gives)
    const documented = Number(/~([\d.]+)M parameters/.exec(PRESETS[name as keyof typeof PRESETS].description)![1]);
    const digits = String(documented).split(".")[1]?.length ?? 0;
    expect((model.numParameters() / 1e6).toFixed(digits)).toBe(documented.toFixed(digits));
    for (const p of model.parameters()) p.dispose?.();
  });
});
