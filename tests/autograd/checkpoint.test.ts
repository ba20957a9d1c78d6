// Gradient checkpointing (src/autograd/checkpoint.ts and the models' gradientCheckpointing flag):
// gradients with and without it are equal (1e-6) with dropout 0.1 active — the recompute must draw
// the same dropout seeds — for a GPT (every parameter trainable) and for a Llama with LoRA on a
// frozen base (the blocks' input requires no grad; the adapters must still get theirs); the RNG
// stream after the step is the one an unchecked step leaves; gradients through checkpoint match
// finite differences; and the peak memory of a long sequence's step is lower.
import { describe, expect, test } from "bun:test";
import * as k from "../../src/index.ts";
import { LlamaForCausalLM } from "../../src/models/llama.ts";
import { applyLora, loraLayers } from "../../src/nn/lora_model.ts";
import { copyInto } from "../../src/nn/lora.ts";
import { backendNames, expectGrad, noLeaks, onBackend, rand } from "../ops/helpers.ts";

const V = 37;

function gpt(dropout: number, blockSize = 16): k.GPT {
  k.seed(3);
  return new k.GPT({ vocabSize: V, blockSize, nLayer: 2, nHead: 2, nEmbd: 16, dropout });
}

function loraLlama(): LlamaForCausalLM {
  k.seed(5);
  const m = new LlamaForCausalLM({
    family: "llama", vocabSize: V, nEmbd: 16, nLayer: 2, nHead: 4, nKvHead: 2, headDim: 4, intermediateSize: 24, blockSize: 32,
    rmsNormEps: 1e-5, ropeTheta: 10000, qkvBias: false, oBias: false, mlpBias: false, tieWordEmbeddings: true, slidingWindow: null,
    attentionDropout: 0, bosTokenId: null, eosTokenId: null, padTokenId: null,
  });
  applyLora(m, { r: 4, loraAlpha: 8, loraDropout: 0.1, targetModules: ["q_proj", "v_proj", "down_proj"] });
  // B starts at zero (PEFT): give it values so A's gradients are not all zero
  loraLayers(m).forEach(([, l], i) => k.scope(() => copyInto(rand(l.adapterWeights("default").B.shape, `ckpt-B-${i}`, -0.3, 0.3).t, l.adapterWeights("default").B)));
  return m;
}

function batch(B: number, T: number): { ids: k.Tensor; targets: k.Tensor } {
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 7 + 3) % V);
  const targets = Int32Array.from({ length: B * T }, (_, i) => (i % 5 === 0 ? -100 : (i * 11 + 1) % V));
  return { ids: k.fromArray(ids, [B, T], { dtype: "i32" }), targets: k.fromArray(targets, [B, T], { dtype: "i32" }) };
}

/** One training step's loss and every trainable parameter's gradient, and the RNG state after it. */
async function step(model: k.GPT | LlamaForCausalLM, checkpointing: boolean): Promise<{ loss: number; grads: Float32Array[]; rngAfter: number[] }> {
  model.gradientCheckpointing = checkpointing;
  model.train();
  const rng = new k.Rng(11);
  const loss = await k.asyncScope(async () => {
    const { ids, targets } = batch(2, 8);
    const l = k.withRng(rng, () => model.loss(ids, targets));
    l.backward();
    return l.item();
  });
  const params = model.trainableParameters();
  const grads = (await Promise.all(params.map((p) => p.grad!.data()))) as Float32Array[];
  for (const p of params) {
    p.grad!.dispose();
    p.grad = null;
  }
  return { loss, grads, rngAfter: rng.getState().s };
}

describe.each(backendNames)("checkpoint on %s", (name) => {
  onBackend(name);

  test("GPT with dropout 0.1: the same loss, gradients (1e-6) and RNG stream with and without checkpointing", async () => {
    const model = gpt(0.1);
    const plain = await step(model, false);
    const ckpt = await step(model, true);
    expect(ckpt.loss).toBe(plain.loss);
    expect(ckpt.grads.length).toBe(model.parameters().length);
    ckpt.grads.forEach((g, i) => expect(g).toBeAllClose(plain.grads[i], { atol: 1e-6, rtol: 1e-6 }));
    expect(ckpt.rngAfter).toEqual(plain.rngAfter);
    // the recompute must reuse the masks: a different stream gives different gradients
    const other = await (async () => {
      model.gradientCheckpointing = false;
      const g = await k.asyncScope(async () => {
        const { ids, targets } = batch(2, 8);
        const l = k.withRng(new k.Rng(12), () => model.loss(ids, targets));
        l.backward();
        return model.parameters()[0].grad!.data();
      });
      for (const p of model.parameters()) p.grad = null;
      return g as Float32Array;
    })();
    expect(other).not.toBeAllClose(plain.grads[0], { atol: 1e-6, rtol: 1e-6 });
    model.dispose();
  });

  test("Llama with LoRA (dropout 0.1) on a frozen base: adapter gradients equal (1e-6) with and without checkpointing", async () => {
    const model = loraLlama();
    const plain = await step(model, false);
    const ckpt = await step(model, true);
    expect(plain.grads.length).toBe(12); // A and B of 3 modules in 2 layers
    expect(Math.max(...plain.grads.flatMap((g) => Array.from(g, Math.abs)))).toBeGreaterThan(1e-3);
    expect(ckpt.loss).toBe(plain.loss);
    ckpt.grads.forEach((g, i) => expect(g).toBeAllClose(plain.grads[i], { atol: 1e-6, rtol: 1e-6 }));
    expect(ckpt.rngAfter).toEqual(plain.rngAfter);
    model.dispose();
  });

  test("gradients of inputs and parameters through checkpoint match finite differences", async () => {
    await noLeaks(async () => {
      const x = rand([3, 5], "ckpt-x", -1, 1).t;
      const w = rand([4, 5], "ckpt-w", -1, 1).t;
      const b = rand([4], "ckpt-b", -0.5, 0.5).t;
      const f = (xx: k.Tensor, ww: k.Tensor, bb: k.Tensor) => k.checkpoint((h) => k.linear(h, ww, bb).tanh().mul(h.sum(-1, true)), [xx], [ww, bb]);
      await expectGrad(f, [x, w, b], { tol: 2e-3, mutate: ["custom"] });
    });
  });

  test("without a graph to record (noGrad, frozen) checkpoint just runs the function", () => {
    k.scope(() => {
      const x = k.ones([2, 2]);
      const y = k.noGrad(() => k.checkpoint((h) => h.mul(2), [x.requireGrad()]));
      expect(y.requiresGrad).toBe(false);
      expect(() => k.checkpoint((h) => h, [k.ones([2]).requireGrad()])).toThrow(/returned one of its inputs/);
    });
  });

  test("peak memory of a long sequence's training step is lower with checkpointing", async () => {
    const T = 256;
    const model = gpt(0.1, T);
    const backend = k.defaultBackend();
    const peak = async (checkpointing: boolean) => {
      model.gradientCheckpointing = checkpointing;
      await k.asyncScope(async () => {
        const { ids, targets } = batch(2, T);
        await backend.flush();
        const base = backend.stats().allocatedBytes;
        backend.resetPeak();
        model.loss(ids, targets).backward();
        await backend.flush();
        peakBytes.set(checkpointing, backend.stats().peakBytes - base);
      });
      for (const p of model.parameters()) {
        p.grad?.dispose();
        p.grad = null;
      }
    };
    const peakBytes = new Map<boolean, number>();
    model.train();
    await peak(false);
    await peak(true);
    expect(peakBytes.get(true)!).toBeLessThan(peakBytes.get(false)!);
    model.dispose();
  });
});
