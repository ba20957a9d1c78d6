// A 16-bit frozen base (createBackend dtype "bfloat16" / "float16") on every backend, on the tiny
// BF16 Qwen2 fixture (tied head, q/k/v biases): the weight matrices load 16-bit (half the bytes),
// norms and biases f32, adapters and optimizer state f32; LoRA SFT gives the loss, adapter
// gradients and trained adapters of the same run on an f32 model holding the same (bf16) values;
// mergeAndUnload turns the merged layers f32 and passes its 1e-5 check; savePretrained writes the
// dtype asked for and reloads to the same logits.
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { mkdtemp, rm, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { createBackend } from "../../src/finetune/backend.ts";
import type { ModelInterface } from "../../src/finetune/model.ts";
import { loraLayers, mergeAndUnload } from "../../src/nn/lora_model.ts";
import { Linear } from "../../src/nn/layers.ts";
import { readSafetensors } from "../../src/io/safetensors.ts";
import { scope } from "../../src/tensor/memory.ts";
import { noGrad } from "../../src/autograd/tape.ts";
import { backendNames } from "../backends.ts";

const QWEN = join(import.meta.dir, "..", "fixtures", "hf", "qwen2");
const tmp = await mkdtemp(join(tmpdir(), "kiln-half-base-"));
afterAll(() => rm(tmp, { recursive: true, force: true }));

const ROWS = [
  { prompt: "The capital of France is", completion: " Paris." },
  { prompt: "The capital of Italy is", completion: " Rome." },
  { prompt: "The capital of Spain is", completion: " Madrid." },
  { prompt: "The capital of Peru is", completion: " Lima." },
];
const SFT = { learning_rate: 1e-2, max_steps: 4, per_device_batch_size: 2, lora_r: 4, lora_alpha: 8, lora_dropout: 0, target_modules: "all-linear", progress: false, lr_scheduler_type: "constant" };

/** Ids and HF labels (-100 on the prompt) of the rows, padded to one length with EOS / -100. */
function batch(model: ModelInterface): { ids: number[][]; labels: number[][] } {
  const tok = model.tokenizer!;
  const seqs = ROWS.map((r) => {
    const p = tok.encode(r.prompt), c = [...tok.encode(r.completion, { addSpecialTokens: false }), tok.eosTokenId!];
    return { ids: [...p, ...c], labels: [...p.map(() => -100), ...c] };
  });
  const T = Math.max(...seqs.map((s) => s.ids.length));
  return {
    ids: seqs.map((s) => [...s.ids, ...Array(T - s.ids.length).fill(tok.eosTokenId!)]),
    labels: seqs.map((s) => [...s.labels, ...Array(T - s.labels.length).fill(-100)]),
  };
}

/** Loss and every adapter gradient of one forward/backward. */
async function lossAndGrads(model: ModelInterface): Promise<{ loss: number; grads: Float32Array[] }> {
  const { ids, labels } = batch(model);
  const loss = model.forward(ids, { labels }).loss!;
  loss.backward();
  const value = await loss.item();
  const grads: Float32Array[] = [];
  for (const [, l] of loraLayers(model.module)) {
    const { A, B } = l.adapterWeights("default");
    grads.push((await A.grad!.data()) as Float32Array, (await B.grad!.data()) as Float32Array);
    A.grad!.dispose(); A.grad = null;
    B.grad!.dispose(); B.grad = null;
  }
  return { loss: value, grads };
}

async function adapters(model: ModelInterface): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const [, l] of loraLayers(model.module)) {
    const { A, B } = l.adapterWeights("default");
    out.push((await A.data()) as Float32Array, (await B.data()) as Float32Array);
  }
  return out;
}

async function logits(model: ModelInterface): Promise<Float32Array> {
  const { ids } = batch(model);
  return (await scope(() => noGrad(() => model.forward(ids).logits)).data()) as Float32Array;
}

describe.each(backendNames)("a 16-bit base on %s", (name) => {
  const device = name === "webgpu" ? "cpu" : "auto";

  test("bfloat16: 16-bit matrices, f32 vectors; LoRA SFT equals the f32 run on the same values", async () => {
    const f32 = await createBackend(name, { device, seed: 7 });
    const m32 = await f32.loadModel(QWEN);
    const sft32 = f32.createSftTrainer(m32, SFT);
    const first32 = await lossAndGrads(m32);
    const r32 = await sft32.train(ROWS);

    const bf = await createBackend(name, { device, dtype: "bfloat16", seed: 7 });
    const m16 = await bf.loadModel(QWEN);
    expect(m16.dtype).toBe("bfloat16");
    const params = m16.module.stateDict();
    for (const [n, t] of params) expect(`${n} ${t.dtype}`).toBe(`${n} ${t.rank === 2 ? "bf16" : "f32"}`);
    const bytes = (m: ModelInterface) => m.module.parameters().reduce((s, t) => s + t.storage.buffer.bytes, 0);
    const sft16 = bf.createSftTrainer(m16, SFT);
    // adapters are f32 and the only trainable parameters
    for (const t of m16.module.trainableParameters()) expect(t.dtype).toBe("f32");
    const first16 = await lossAndGrads(m16);
    expect(Math.abs(first16.loss - first32.loss)).toBeLessThan(1e-5);
    first16.grads.forEach((g, i) => expect(g).toBeAllClose(first32.grads[i], { atol: 1e-6, rtol: 1e-4 }));
    expect(first16.grads.some((g) => g.some((v) => v !== 0))).toBe(true);
    const r16 = await sft16.train(ROWS);
    expect(r16.success).toBe(true);
    expect(Math.abs(r16.final_loss! - r32.final_loss!)).toBeLessThan(1e-5);
    const [a16, a32] = [await adapters(m16), await adapters(m32)];
    // 4 AdamW steps of lr 1e-2 move each value by up to 4e-2, and Adam turns a gradient near 0 into
    // a step of ±lr, so f32 summation order alone shows here (up to ~1e-4); a misread weight is O(1e-2)
    a16.forEach((a, i) => expect(a).toBeAllClose(a32[i], { atol: 1e-3, rtol: 1e-3 }));
    // the base (matrices) in half the bytes; the LoRA layers' counts equal
    const base = (m: ModelInterface) => [...m.module.stateDict()].filter(([n]) => !n.includes("lora_")).reduce((s, [, t]) => s + t.storage.buffer.bytes, 0);
    expect(base(m16)).toBeLessThan(0.55 * base(m32));
    expect(bytes(m16)).toBeLessThan(bytes(m32));

    // merge: the merged layers become f32 and the self-check (1e-5) holds; logits as the adapter model's
    const before = await logits(m16);
    const worst = await mergeAndUnload(m16.module);
    expect(worst).toBeLessThanOrEqual(1e-5 * Math.max(1, ...before.map(Math.abs)));
    expect(loraLayers(m16.module)).toHaveLength(0);
    const q = m16.module.getSubmodule("model.layers.0.self_attn.q_proj") as Linear;
    expect(q.weight.dtype).toBe("f32");
    expect(m16.module.getSubmodule("model.embed_tokens").parameters()[0].dtype).toBe("bf16");
    expect(await logits(m16)).toBeAllClose(before, { atol: 1e-5 * Math.max(1, ...before.map(Math.abs)), rtol: 1e-5 });
    m16.module.dispose();
    m32.module.dispose();
  });

  test("savePretrained writes the dtype asked for; a float16 base loads from a BF16 file and runs", async () => {
    const backend = await createBackend(name, { device, dtype: "float16", seed: 1 });
    const model = await backend.loadModel(QWEN);
    expect(model.module.stateDict().get("model.layers.0.mlp.up_proj.weight")!.dtype).toBe("f16");
    const sft = backend.createSftTrainer(model, { ...SFT, max_steps: 2 });
    expect((await sft.train(ROWS)).success).toBe(true);
    const want = await logits(model);
    for (const dtype of ["bfloat16", "float32"] as const) {
      const dir = join(tmp, `${name}-${dtype}`);
      await model.savePretrained(dir, { dtype });
      const file = await readSafetensors(join(dir, "model.safetensors"));
      expect(file.info("model.layers.0.self_attn.q_proj.weight").dtype).toBe(dtype === "bfloat16" ? "BF16" : "F32");
      expect(JSON.parse(await readFile(join(dir, "config.json"), "utf8")).torch_dtype).toBe(dtype);
      const again = await (await createBackend(name, { device })).loadModel(dir);
      // f16 base + f32 update, written in f32: the same logits; in bf16: within bf16's rounding
      expect(await logits(again)).toBeAllClose(want, dtype === "float32" ? { atol: 1e-4, rtol: 1e-4 } : { atol: 0.1, rtol: 0.05 });
      again.module.dispose();
    }
    // the model keeps its adapters after saving
    expect(loraLayers(model.module).length).toBeGreaterThan(0);
    model.module.dispose();
  });
});
