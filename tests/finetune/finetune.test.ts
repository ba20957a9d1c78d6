// The fine-tuning flow through the facade, on the tiny BF16 Qwen2 fixture (tied head, q/k/v biases,
// a byte-level BPE tokenizer): createBackend → loadModel → SFT trainer → DPO trainer → adapters
// and merged folders; and the SFT step through the engine against the PyTorch fixture (5 AdamW
// steps with clipping, tests/fixtures/make_finetune.py).

import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { BackendRegistry, createBackend } from "../../src/finetune/backend.ts";
import { runEngine, adapterOptimizer } from "../../src/finetune/run.ts";
import { ModelInterface } from "../../src/finetune/model.ts";
import { readSafetensors } from "../../src/io/safetensors.ts";
import { fromArray } from "../../src/tensor/tensor.ts";
import { scope } from "../../src/tensor/memory.ts";
import { noGrad } from "../../src/autograd/tape.ts";
import { adapterNames, disableAdapters, loraLayers } from "../../src/nn/lora_model.ts";
import { maskedCrossEntropy, shiftLabels } from "../../src/train/losses.ts";
import { readAdapterConfig } from "../../src/io/peft.ts";
import { backendNames } from "../backends.ts";

const FIX = join(import.meta.dir, "..", "fixtures");
const QWEN = join(FIX, "hf", "qwen2");
const tmp = await mkdtemp(join(tmpdir(), "kiln-finetune-"));
afterAll(() => rm(tmp, { recursive: true, force: true }));

const SFT_ROWS = [
  { prompt: "The capital of France is", completion: " Paris." },
  { prompt: "The capital of Italy is", completion: " Rome." },
  { prompt: "The capital of Spain is", completion: " Madrid." },
  { prompt: "The capital of Peru is", completion: " Lima." },
];
const PAIRS = [
  { prompt: "The capital of France is", chosen: " Paris.", rejected: " Rome." },
  { prompt: "The capital of Italy is", chosen: " Rome.", rejected: " Lima." },
];

describe("the fine-tuning facade", () => {
  test("BackendRegistry lists wasm and webgpu; an unknown backend names the available ones", async () => {
    expect(BackendRegistry.listBackends()).toEqual(expect.arrayContaining(["wasm", "webgpu"]));
    await expect(createBackend("wsam")).rejects.toThrow(/^Unknown backend: wsam \(available: auto, wasm, webgpu.*\); did you mean "wasm"\?/);
  });

  test("config keys: TRL/PEFT snake_case and camelCase; an unknown key suggests the nearest; errors at creation", async () => {
    const backend = await createBackend("wasm", { seed: 1 });
    const model = await backend.loadModel(QWEN);
    expect(() => backend.createSftTrainer(model, { learning_rate: 1e-3, lerning_rate: 2 })).toThrow(/unknown key "lerning_rate" \(did you mean "learningRate"\?\)/);
    expect(() => backend.createSftTrainer(model, { learning_rate: -1 })).toThrow(/learningRate: .*\(got -1\)/);
    expect(() => backend.createSftTrainer(model, { batch_size: 2, per_device_batch_size: 4 })).toThrow(/"per_device_batch_size" is given twice \(as batchSize too\)/);
    expect(() => backend.createSftTrainer(model, { n_epochs: 2 })).toThrow(/"n_epochs" was renamed: use epochs/); // the engine's normaliser
    const sft = backend.createSftTrainer(model, {
      learning_rate: 3e-4, num_epochs: 3, per_device_batch_size: 4, gradient_accumulation_steps: 4,
      max_seq_length: 2048, lora_r: 8, lora_alpha: 16, lora_dropout: 0.05, target_modules: ["q_proj", "v_proj", "o_proj"], progress: false,
    });
    expect(sft.config).toMatchObject({ learningRate: 3e-4, epochs: 3, batchSize: 4, gradientAccumulationSteps: 4, maxSeqLength: 2048, loraR: 8, loraAlpha: 16, targetModules: ["q_proj", "v_proj", "o_proj"] });
    expect(loraLayers(model.module)).toHaveLength(6);
    // DPO's max_length is the whole sequence (not SFT's max_seq_length); seed is the engine's randomSeed
    expect(backend.createDpoTrainer(model, { max_length: 64, max_prompt_length: 16, seed: 3, progress: false }).config).toMatchObject({ maxLength: 64, maxPromptLength: 16, randomSeed: 3 });
    model.module.dispose();
  });

  test("a model from one backend handed to another backend's trainer is an error naming both", async () => {
    const a = await createBackend("wasm");
    const b = await createBackend("wasm");
    const model = await a.loadModel(QWEN);
    expect(() => b.createSftTrainer(model)).toThrow(/loaded by backend "wasm" .* not by this "wasm" backend/);
    model.module.dispose();
  });
});

describe.each(backendNames)("SFT then DPO on %s", (name) => {
  test("SFT lowers the completion loss; the adapter saves as PEFT and loads back; DPO starts at ln 2 from the SFT model and raises the reward margin", async () => {
    const backend = await createBackend(name, { device: name === "webgpu" ? "cpu" : "auto", seed: 3 });
    const model = await backend.loadModel(QWEN);
    const sft = backend.createSftTrainer(model, { learning_rate: 2e-2, max_steps: 30, per_device_batch_size: 4, lora_r: 4, lora_alpha: 8, lora_dropout: 0, logging_steps: 5, progress: false, lr_scheduler_type: "constant" });
    const before = await sftLoss(model);
    const result = await sft.train(SFT_ROWS);
    expect(result.error_message).toBeNull();
    expect(result.success).toBe(true);
    expect(result.samples_trained).toBe(120);
    expect(result.steps).toBe(30);
    const after = await sftLoss(model);
    expect(after).toBeLessThan(before * 0.5);
    expect(result.final_loss!).toBeLessThan(result.lossHistory![0]);

    const dir = await sft.saveAdapter(join(tmp, `sft-${name}`));
    expect((await readAdapterConfig(dir)).target_modules).toEqual(["q_proj", "v_proj"]);
    const again = await backend.loadModel(QWEN, { adapterPath: dir });
    expect(Math.abs((await sftLoss(again)) - after)).toBeLessThan(1e-5);
    again.module.dispose();

    const dpo = backend.createDpoTrainer(model, { learning_rate: 5e-3, max_steps: 12, per_device_batch_size: 2, beta: 0.1, logging_steps: 1, progress: false, lr_scheduler_type: "constant" });
    expect(dpo.referenceKind).toBe("adapter_copy");
    expect(adapterNames(model.module).sort()).toEqual(["default", "reference"]);
    const r = await dpo.train(PAIRS);
    expect(r.error_message).toBeNull();
    expect(r.success).toBe(true);
    expect(Math.abs(r.lossHistory![0] - Math.LN2)).toBeLessThan(1e-5); // policy = reference at the start
    expect(r.final_loss!).toBeLessThan(Math.LN2 - 0.01);
    for (const k of ["rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected"]) expect(Number.isFinite(r.metrics[k])).toBe(true);
    expect(r.metrics["rewards/margins"]).toBeGreaterThan(0);
    expect(r.metrics["rewards/accuracies"]).toBe(1);
    model.module.dispose();
  });
});

describe("modules_to_save through SFT and DPO", () => {
  test("SFT trains a copy of model.norm (the original stays); DPO's reference runs a frozen copy of it", async () => {
    const backend = await createBackend("wasm", { seed: 5 });
    const model = await backend.loadModel(QWEN);
    const original = (await model.module.stateDict().get("model.norm.weight")!.data()) as Float32Array;
    const base = await sftLoss(model);
    const sft = backend.createSftTrainer(model, { learning_rate: 2e-2, max_steps: 6, per_device_batch_size: 2, lora_dropout: 0, modules_to_save: ["norm"], progress: false });
    expect((await sft.train(SFT_ROWS)).success).toBe(true);
    const sd = () => model.module.stateDict();
    const trained = (await sd().get("model.norm.modules_to_save.default.weight")!.data()) as Float32Array;
    expect(trained).not.toEqual(original);
    expect(await sd().get("model.norm.original_module.weight")!.data()).toEqual(original);
    expect(await disableAdapters(model.module, () => sftLoss(model))).toBe(base); // the base model exactly

    const dpo = backend.createDpoTrainer(model, { learning_rate: 5e-3, max_steps: 4, per_device_batch_size: 2, logging_steps: 1, progress: false, lr_scheduler_type: "constant" });
    expect(sd().get("model.norm.modules_to_save.reference.weight")!.requiresGrad).toBe(false);
    const r = await dpo.train(PAIRS);
    expect(r.success).toBe(true);
    expect(Math.abs(r.lossHistory![0] - Math.LN2)).toBeLessThan(1e-5);
    expect(await sd().get("model.norm.modules_to_save.reference.weight")!.data()).toEqual(trained); // the reference did not move
    expect(await sd().get("model.norm.modules_to_save.default.weight")!.data()).not.toEqual(trained); // the policy's copy did
    dpo.dispose();
    expect([...sd().keys()].filter((k) => k.startsWith("model.norm."))).toEqual(["model.norm.original_module.weight", "model.norm.modules_to_save.default.weight"]);
    model.module.dispose();
  });
});

describe("SFT on the engine against PyTorch", () => {
  test("5 steps of the engine's loop (constant lr, clipping at 1.0, decoupled weight decay) follow the fixture's losses", async () => {
    const SFT = join(FIX, "finetune", "sft");
    const ref = await readSafetensors(join(SFT, "reference.safetensors"));
    const info = JSON.parse(await readFile(join(SFT, "reference.json"), "utf8"));
    const ids = (await ref.read("input_ids")) as Int32Array;
    const labels = (await ref.read("labels")) as Int32Array;
    const [B, T] = ref.info("input_ids").shape;
    const backend = await createBackend("wasm");
    const model = await backend.loadModel(QWEN, { adapterPath: join(SFT, "adapter") });
    model.module.eval(); // the fixture has dropout off
    const { lr, betas, eps, weight_decay } = info.adamw;
    const result = await runEngine({
      model,
      data: { batch: () => ({ x: fromArray(ids, [B, T], { dtype: "i32", backend: backend.compute }), y: fromArray(shiftLabels(labels, B, T), [B, T], { dtype: "i32", backend: backend.compute }) }) },
      loss: (m, b) => maskedCrossEntropy((m as ModelInterface["module"]).forward(b.x), b.y),
      args: { iters: 5, batchSize: B, lr, schedule: "constant", warmupIters: 0, weightDecay: weight_decay, beta1: betas[0], beta2: betas[1], eps, gradClip: info.max_grad_norm, evalInterval: 0, finalEvalIters: 1, logInterval: 1, checkpointInterval: 0 },
      optimizer: adapterOptimizer(model, { learningRate: lr, weightDecay: weight_decay, adamBeta1: betas[0], adamBeta2: betas[1], adamEpsilon: eps }),
      tokens: (b) => b.x.size, outDir: null, resume: false, progress: false, samplesPerStep: B, hasEval: false,
    });
    expect(result.success).toBe(true);
    info.step_losses.forEach((want: number, i: number) => expect(Math.abs(result.lossHistory![i] - want)).toBeLessThan(1e-4));
    model.module.dispose();
  });
});

/** Mean completion loss of SFT_ROWS under the model (eval mode, no gradient). */
async function sftLoss(model: ModelInterface): Promise<number> {
  const tok = model.tokenizer!;
  let total = 0;
  for (const row of SFT_ROWS) {
    const p = tok.encode(row.prompt);
    const c = [...tok.encode(row.completion, { addSpecialTokens: false }), tok.eosTokenId!];
    const ids = [...p, ...c];
    const labels = ids.map((t, i) => (i < p.length ? -100 : t));
    const { loss } = scope(() => noGrad(() => model.forward([ids], { labels: [labels] })));
    total += await loss!.item();
  }
  return total / SFT_ROWS.length;
}

describe.if(backendNames.includes("webgpu"))("wasm and WebGPU", () => {
  test("the same short SFT run gives the same losses and adapters within 1e-4 (kiln compare-backends)", async () => {
    const { compareBackends } = await import("../../src/finetune/compare.ts");
    const r = await compareBackends({ model: QWEN, steps: 4 });
    expect(r.losses[0]).toHaveLength(4);
    expect(r.maxLossDiff).toBeLessThan(1e-4);
    expect(r.maxAdapterDiff).toBeLessThan(1e-4);
    expect(r.losses[0][3]).toBeLessThan(r.losses[0][0]); // it trained
    expect(r.ok).toBe(true);
  });
});

describe("SFT run folders", () => {
  test("save_steps writes checkpoints; resume: true continues the run from the newest one, mid-epoch exactly", async () => {
    const out = join(tmp, "resume-run");
    // 4 rows, batches of 3: the checkpoint at step 3 falls inside the third epoch
    const cfg = { learning_rate: 1e-2, per_device_batch_size: 3, lora_r: 4, lora_alpha: 8, lora_dropout: 0, save_steps: 3, output_dir: out, progress: false, lr_scheduler_type: "constant", seed: 5 };
    const backend = await createBackend("wasm", { seed: 9 });
    const full = await backend.loadModel(QWEN);
    const all = await backend.createSftTrainer(full, { ...cfg, max_steps: 5, output_dir: join(tmp, "resume-full") }).train(SFT_ROWS);
    expect(all.error_message).toBeNull();
    expect(all.steps).toBe(5);

    const first = await createBackend("wasm", { seed: 9 });
    const a = await first.loadModel(QWEN);
    const part = await first.createSftTrainer(a, { ...cfg, max_steps: 3 }).train(SFT_ROWS);
    expect(part.steps).toBe(3);
    part.lossHistory!.forEach((l, i) => expect(l).toBe(all.lossHistory![i]));
    const second = await createBackend("wasm", { seed: 123 });
    const b = await second.loadModel(QWEN);
    const rest = await second.createSftTrainer(b, { ...cfg, max_steps: 5, resume: true }).train(SFT_ROWS);
    expect(rest.error_message).toBeNull();
    expect(rest.steps).toBe(5);
    expect(rest.lossHistory).toHaveLength(2);
    // steps 4 and 5 after the resume are the uninterrupted run's (same batches, same adapter)
    expect(Math.abs(rest.lossHistory![0] - all.lossHistory![3])).toBeLessThan(1e-6);
    expect(Math.abs(rest.lossHistory![1] - all.lossHistory![4])).toBeLessThan(1e-6);
    for (const m of [full, a, b]) m.module.dispose();
  });
});

describe("SFT evaluation", () => {
  test("eval data is evaluated every eval_steps and at the end: eval_loss in the metrics, val_loss in metrics.jsonl", async () => {
    const backend = await createBackend("wasm", { seed: 2 });
    const model = await backend.loadModel(QWEN);
    const out = join(tmp, "eval-run");
    const sft = backend.createSftTrainer(model, { learning_rate: 1e-2, max_steps: 4, per_device_batch_size: 2, eval_steps: 2, lora_dropout: 0, output_dir: out, progress: false });
    const r = await sft.train(SFT_ROWS, SFT_ROWS.slice(0, 2));
    expect(r.error_message).toBeNull();
    expect(Number.isFinite(r.metrics.eval_loss)).toBe(true);
    // the mean over the eval batch's completion tokens (one batch of 2, padded), as HF's eval_loss
    const tok = model.tokenizer!;
    const rows = SFT_ROWS.slice(0, 2).map((row) => {
      const p = tok.encode(row.prompt), c = [...tok.encode(row.completion, { addSpecialTokens: false }), tok.eosTokenId!];
      return { ids: [...p, ...c], labels: [...p.map(() => -100), ...c] };
    });
    const T = Math.max(...rows.map((x) => x.ids.length));
    const pad = (a: number[], v: number) => [...a, ...Array(T - a.length).fill(v)];
    const { loss } = scope(() => noGrad(() => model.forward(rows.map((x) => pad(x.ids, tok.eosTokenId!)), { labels: rows.map((x) => pad(x.labels, -100)) })));
    expect(Math.abs(r.metrics.eval_loss - (await loss!.item()))).toBeLessThan(1e-4);
    const lines = (await readFile(join(out, "metrics.jsonl"), "utf8")).trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.filter((l) => typeof l.val_loss === "number" || typeof l["val/loss"] === "number").length).toBeGreaterThanOrEqual(2);
    model.module.dispose();
  });
});
