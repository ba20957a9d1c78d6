// The fine-tuning paths that save memory: the chunked LM-head loss (causalLmLoss / causalLmLogps,
// ModelInterface.forward with labels) and gradient_checkpointing in the SFT/DPO configs, on the
// tiny Qwen2 fixture (tied head, q/k/v biases). The chunked loss follows the PyTorch fixture's SFT
// steps and equals the logits path; checkpointing leaves the losses unchanged (dropout on).

import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { readFile } from "node:fs/promises";
import { createBackend } from "../../src/finetune/backend.ts";
import { adapterOptimizer, runEngine } from "../../src/finetune/run.ts";
import { ModelInterface } from "../../src/finetune/model.ts";
import { LlamaForCausalLM } from "../../src/models/llama.ts";
import { applyLora } from "../../src/nn/lora_model.ts";
import { getBackend } from "../backends.ts";
import { readSafetensors } from "../../src/io/safetensors.ts";
import { fromArray } from "../../src/tensor/tensor.ts";
import { asyncScope } from "../../src/tensor/memory.ts";
import { noGrad } from "../../src/autograd/tape.ts";
import { causalLmLogps, causalLmLoss, maskedCrossEntropy, sequenceLogps, shiftLabels } from "../../src/train/losses.ts";
import { backendNames } from "../backends.ts";

const FIX = join(import.meta.dir, "..", "fixtures");
const QWEN = join(FIX, "hf", "qwen2");
const SFT_ROWS = [
  { prompt: "The capital of France is", completion: " Paris." },
  { prompt: "The capital of Italy is", completion: " Rome." },
  { prompt: "The capital of Spain is", completion: " Madrid." },
];
const PAIRS = [
  { prompt: "The capital of France is", chosen: " Paris.", rejected: " Rome." },
  { prompt: "The capital of Italy is", chosen: " Rome.", rejected: " Lima." },
];

describe("the chunked LM-head loss against PyTorch", () => {
  test("5 SFT steps with causalLmLoss follow the fixture's losses (1e-4)", async () => {
    const SFT = join(FIX, "finetune", "sft");
    const ref = await readSafetensors(join(SFT, "reference.safetensors"));
    const info = JSON.parse(await readFile(join(SFT, "reference.json"), "utf8"));
    const ids = (await ref.read("input_ids")) as Int32Array;
    const labels = (await ref.read("labels")) as Int32Array;
    const [B, T] = ref.info("input_ids").shape;
    const backend = await createBackend("wasm");
    const model = await backend.loadModel(QWEN, { adapterPath: join(SFT, "adapter") });
    model.module.eval();
    const { lr, betas, eps, weight_decay } = info.adamw;
    const result = await runEngine({
      model,
      data: { batch: () => ({ x: fromArray(ids, [B, T], { dtype: "i32", backend: backend.compute }), y: fromArray(shiftLabels(labels, B, T), [B, T], { dtype: "i32", backend: backend.compute }) }) },
      loss: (m, b) => causalLmLoss(m as ModelInterface["module"], b.x, b.y),
      args: { iters: 5, batchSize: B, lr, schedule: "constant", warmupIters: 0, weightDecay: weight_decay, beta1: betas[0], beta2: betas[1], eps, gradClip: info.max_grad_norm, evalInterval: 0, finalEvalIters: 1, logInterval: 1, checkpointInterval: 0 },
      optimizer: adapterOptimizer(model, { learningRate: lr, weightDecay: weight_decay, adamBeta1: betas[0], adamBeta2: betas[1], adamEpsilon: eps }),
      tokens: (b) => b.x.size, outDir: null, resume: false, progress: false, samplesPerStep: B, hasEval: false,
    });
    expect(result.success).toBe(true);
    info.step_losses.forEach((want: number, i: number) => expect(Math.abs(result.lossHistory![i] - want)).toBeLessThan(1e-4));
    model.module.dispose();
  });
});

describe.each(backendNames)("memory-saving training paths on %s", (name) => {
  const open = async () => {
    const backend = await createBackend(name, { device: name === "webgpu" ? "cpu" : "auto", seed: 3 });
    return { backend, model: await backend.loadModel(QWEN) };
  };

  test("forward with labels: the loss without logits equals the loss of the logits (1e-5); logits only when asked", async () => {
    const { model } = await open();
    const tok = model.tokenizer!;
    const rows = SFT_ROWS.map((r) => [...tok.encode(r.prompt), ...tok.encode(r.completion, { addSpecialTokens: false })]);
    const T = Math.max(...rows.map((r) => r.length));
    const ids = rows.map((r) => [...r, ...new Array(T - r.length).fill(tok.eosTokenId!)]);
    const labels = ids.map((r, i) => r.map((t, j) => (j < 3 || j >= rows[i].length ? -100 : t)));
    await asyncScope(async () => {
      const chunked = noGrad(() => model.forward(ids, { labels }));
      expect(chunked.logits).toBeUndefined();
      const both = noGrad(() => model.forward(ids, { labels, returnLogits: true }));
      expect(both.logits!.shape).toEqual([3, T, model.module.config.vocabSize]);
      const want = await both.loss!.item();
      expect(Math.abs((await chunked.loss.item()) - want)).toBeLessThan(1e-5);
      // the same through the logits, by hand
      const y = fromArray(shiftLabels(Int32Array.from(labels.flat()), 3, T), [3, T], { dtype: "i32", backend: model.backend });
      expect(Math.abs((await maskedCrossEntropy(both.logits!, y).item()) - want)).toBeLessThan(1e-6);
      // per-sequence log-probs (DPO): chunked equals the logits path
      const x = fromArray(Int32Array.from(ids.flat()), [3, T], { dtype: "i32", backend: model.backend });
      const a = (await noGrad(() => causalLmLogps(model.module, x, y)).data()) as Float32Array;
      const b = (await noGrad(() => sequenceLogps(model.module.forward(x), y)).data()) as Float32Array;
      expect(a).toBeAllClose(b, { atol: 1e-4, rtol: 1e-5 });
    });
    model.module.dispose();
  });

  test("a training step through forward(ids, { labels }) with Qwen2.5's vocabulary stays below the size of its logits", async () => {
    const backend = await getBackend(name);
    const V = 151936, B = 2, T = 192; // 384 positions: more than the two 110-position chunks alive at once
    const module = new LlamaForCausalLM({
      family: "qwen2", vocabSize: V, nEmbd: 8, nLayer: 1, nHead: 2, nKvHead: 1, headDim: 4, intermediateSize: 16, blockSize: T,
      rmsNormEps: 1e-6, ropeTheta: 1e6, qkvBias: true, oBias: false, mlpBias: false, tieWordEmbeddings: true, slidingWindow: null,
      attentionDropout: 0, bosTokenId: null, eosTokenId: null, padTokenId: null,
    }, backend);
    applyLora(module, { r: 2, loraAlpha: 4, targetModules: ["q_proj", "v_proj"] });
    module.train();
    const model = new ModelInterface({ module, backend, backendName: name });
    const ids = Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => (b * 7919 + t * 104729) % V));
    const labels = ids.map((r) => r.map((t, i) => (i < T / 2 ? -100 : t)));
    await backend.flush();
    const base = backend.stats().allocatedBytes;
    backend.resetPeak();
    await asyncScope(async () => {
      const { loss } = model.forward(ids, { labels });
      loss.backward();
      expect(Number.isFinite(await loss.item())).toBe(true);
    });
    await backend.flush();
    expect(backend.stats().peakBytes - base).toBeLessThan(B * T * V * 4); // the logits alone: 233 MB
    module.dispose();
  }, 60_000);

  test("gradient_checkpointing: SFT and DPO losses equal those without it (lora_dropout 0.1); the flag stays on the model", async () => {
    const losses = async (checkpointing: boolean) => {
      const { backend, model } = await open();
      const common = { max_steps: 3, per_device_batch_size: 2, lora_r: 4, lora_alpha: 8, lora_dropout: 0.1, logging_steps: 1, progress: false, gradient_checkpointing: checkpointing };
      const sft = await backend.createSftTrainer(model, { learning_rate: 1e-2, ...common }).train(SFT_ROWS);
      expect(sft.error_message).toBeNull();
      expect(model.module.gradientCheckpointing).toBe(checkpointing);
      const dpo = await backend.createDpoTrainer(model, { learning_rate: 1e-2, beta: 0.1, ...common }).train(PAIRS);
      expect(dpo.error_message).toBeNull();
      model.module.dispose();
      return [...sft.lossHistory!, ...dpo.lossHistory!];
    };
    const plain = await losses(false);
    const ckpt = await losses(true);
    expect(plain).toHaveLength(6);
    expect(ckpt).toBeAllClose(plain, { atol: 1e-6, rtol: 1e-6 });
  });
});
