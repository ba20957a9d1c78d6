// The GPT model against PyTorch (llm.c's test_gpt2 idea): tests/fixtures/make_gpt_state.py built
// a tiny GPT-2 the way Hugging Face's GPT2LMHeadModel computes it, in float64, and stored its
// weights, a batch, the logits, the loss, every gradient and the losses of 10 clipped AdamW
// steps. kiln must match: logits within 1e-5, grads within 1e-4 (relative to the largest),
// the 10-step losses within 1e-5, on every backend. Logits are O(1) (std 1.6), so a small error
// in GELU or LayerNorm shows; a second batch is shorter than block_size.

import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { readFile } from "node:fs/promises";
import { readSafetensors } from "../../src/io/safetensors.ts";
import { GPT } from "../../src/models/gpt.ts";
import { fromArray, useBackend } from "../../src/tensor/tensor.ts";
import { scope } from "../../src/tensor/memory.ts";
import { noGrad } from "../../src/autograd/tape.ts";
import { defaultOptimizer } from "../../src/train/trainer.ts";
import { TrainArgs } from "../../src/train/args.ts";
import { gradNormSq } from "../../src/optim/clip.ts";
import { backendNames, getBackend } from "../backends.ts";

const FIXTURES = join(import.meta.dir, "..", "fixtures");
const file = await readSafetensors(join(FIXTURES, "gpt2_tiny.safetensors"));
const info = JSON.parse(await readFile(join(FIXTURES, "gpt2_tiny.json"), "utf8"));
const { vocab_size: V, n_layer, n_head, n_embd, block_size } = info.config;
const { B, T } = info.batch;

async function loadModel(): Promise<GPT> {
  const model = new GPT({ vocabSize: V, blockSize: block_size, nLayer: n_layer, nHead: n_head, nEmbd: n_embd });
  const values = new Map<string, { shape: readonly number[]; data: Float32Array }>();
  for (const name of info.param_names as string[]) values.set(name, { shape: file.info(name).shape, data: (await file.read(name)) as Float32Array });
  model.loadStateDict(values);
  return model;
}

describe.each(backendNames)("gpt vs PyTorch fixture on %s", (name) => {
  test("parameter names and shapes are Hugging Face's", async () => {
    useBackend(await getBackend(name));
    const model = await loadModel();
    expect(model.namedParameters().map(([n]) => n)).toEqual(info.param_names);
    model.dispose();
  });

  test("logits (1e-5), loss and every gradient (1e-4) match", async () => {
    const backend = await getBackend(name);
    useBackend(backend);
    const model = await loadModel();
    const idx = fromArray((await file.read("idx")) as Int32Array, [B, T], { dtype: "i32" });
    const targets = fromArray((await file.read("targets")) as Int32Array, [B, T], { dtype: "i32" });
    const logits = scope(() => noGrad(() => model.forward(idx))); // [B, T, V]
    expect(await logits.data()).toBeAllClose(await file.readFloat64("logits"), { atol: 1e-5, rtol: 0 });
    logits.dispose();

    const l = model.loss(idx, targets);
    expect(await l.item()).toBeCloseTo((await file.readFloat64("loss"))[0], 5);
    l.backward();
    for (const [pname, p] of model.namedParameters()) {
      const want = await file.readFloat64(`grad.${pname}`);
      const scale = Math.max(...want.map(Math.abs), 1e-12);
      // relative to the tensor's largest gradient: f32 sums cannot do better on near-zero entries
      expect(await p.grad!.data(), pname).toBeAllClose(want, { atol: 1e-4 * scale, rtol: 1e-4 });
    }
    l.dispose();
    idx.dispose();
    targets.dispose();
    model.dispose();
  });

  test("a batch shorter than block_size: logits (1e-5) and loss match", async () => {
    useBackend(await getBackend(name));
    const model = await loadModel();
    const Ts = info.batch_short.T;
    expect(Ts).toBeLessThan(block_size);
    const idx = fromArray((await file.read("idx_short")) as Int32Array, [B, Ts], { dtype: "i32" });
    const targets = fromArray((await file.read("targets_short")) as Int32Array, [B, Ts], { dtype: "i32" });
    const logits = scope(() => noGrad(() => model.forward(idx))); // [B, Ts, V]
    expect(logits.shape).toEqual([B, Ts, V]);
    expect(await logits.data()).toBeAllClose(await file.readFloat64("logits_short"), { atol: 1e-5, rtol: 0 });
    const l = scope(() => noGrad(() => model.loss(idx, targets)));
    expect(await l.item()).toBeCloseTo((await file.readFloat64("loss_short"))[0], 5);
    for (const t of [logits, l, idx, targets]) t.dispose();
    model.dispose();
  });

  test("10 AdamW steps with clipping give the same losses (1e-5) and weights", async () => {
    const backend = await getBackend(name);
    useBackend(backend);
    const model = await loadModel();
    const t = info.train;
    const args = TrainArgs.parse({ lr: t.lr, beta1: t.betas[0], beta2: t.betas[1], eps: t.eps, weightDecay: 0.1 });
    const opt = defaultOptimizer(model, args);
    const idx = fromArray((await file.read("idx")) as Int32Array, [B, T], { dtype: "i32" });
    const targets = fromArray((await file.read("targets")) as Int32Array, [B, T], { dtype: "i32" });
    const losses: number[] = [];
    for (let step = 0; step < t.losses.length; step++) {
      const loss = scope(() => {
        const l = model.loss(idx, targets);
        l.backward();
        opt.step({ gradNormSq: gradNormSq(opt.params), maxNorm: 1.0 });
        opt.zeroGrad();
        return l;
      });
      losses.push(await loss.item());
      loss.dispose();
    }
    expect(losses).toBeAllClose(t.losses, { atol: 1e-5, rtol: 0 });
    // Adam divides by sqrt(v): where a gradient is near zero, f32 rounding of g moves that
    // element's update by up to ~lr, so weights are compared at a fraction of lr (losses at 1e-5)
    for (const [pname, p] of model.namedParameters()) {
      expect(await p.data(), pname).toBeAllClose(await file.readFloat64(`final.${pname}`), { atol: 0.2 * t.lr, rtol: 1e-4 });
    }
    opt.dispose();
    idx.dispose();
    targets.dispose();
    model.dispose();
  });
});
