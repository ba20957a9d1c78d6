// Mixed precision (withAutocast + the engine's useAmp): under autocast the matrix products, forward
// and backward, run the f16 kernel on WebGPU with shader-f16 (the same bits as the f16 kernel
// chosen by tuning, other bits than f32), only in that call; elsewhere (wasm, no shader-f16) they
// are f32 to the bit. Then the check: a small GPT trained with useAmp on WebGPU ends
// within 0.02 val loss of the same run in f32.
import { describe, expect, test } from "bun:test";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Backend } from "../../src/backend/backend.ts";
import type { WebGPUBackend } from "../../src/backend/webgpu/index.ts";
import { GPT } from "../../src/models/gpt.ts";
import { TokenDataset, type Batch } from "../../src/data/dataset.ts";
import { CharTokenizer } from "../../src/data/tokenizer.ts";
import { GenericTrainer, GenericTrainerConfig, type Loader } from "../../src/train/engine.ts";
import { AdamW } from "../../src/optim/adamw.ts";
import * as ops from "../../src/ops/index.ts";
import { randn, useBackend, type Tensor } from "../../src/tensor/tensor.ts";
import { Rng, seed } from "../../src/tensor/random.ts";
import { isAutocast, withAutocast } from "../../src/tensor/mode.ts";
import { backendNames, getBackend } from "../backends.ts";

const bits = async (t: Tensor) => {
  const out = new Uint32Array((await t.data()).slice().buffer);
  t.dispose();
  return out;
};
const same = (a: Uint32Array, b: Uint32Array) => a.length === b.length && a.every((v, i) => v === b[i]);

/** a [37, 96] @ b [96, 70], a linear x [2, 5, 96]·w [70, 96]ᵀ + bias, and their input gradients. */
function inputs(backend: Backend) {
  const rng = new Rng(7);
  return {
    a: randn([37, 96], { backend, rng, requiresGrad: true }),
    b: randn([96, 70], { backend, rng, requiresGrad: true }),
    x: randn([2, 5, 96], { backend, rng, requiresGrad: true }),
    w: randn([70, 96], { backend, rng, requiresGrad: true }),
    bias: randn([70], { backend, rng }),
  };
}

/** The forward products and, with backward() called where `backwardIn` says, the gradients of a and w. */
async function products(backend: Backend, forwardAutocast: boolean, backwardAutocast = forwardAutocast): Promise<Uint32Array[]> {
  const t = inputs(backend);
  // f16Saves off: this checks the products; the f16 copies the elementwise ops below would keep
  // for their backward are amp_memory.test.ts's
  const [mm, lin] = withAutocast(forwardAutocast, () => [ops.matmul(t.a, t.b), ops.linear(t.x, t.w, t.bias)], { f16Saves: false });
  withAutocast(backwardAutocast, () => ops.add(ops.sum(ops.mul(mm, mm)), ops.sum(ops.mul(lin, lin))).backward(), { f16Saves: false });
  const out = [await bits(mm), await bits(lin), await bits(t.a.grad!), await bits(t.w.grad!)];
  for (const v of Object.values(t)) v.dispose();
  return out;
}

for (const name of backendNames) {
  describe(`autocast on ${name}`, () => {
    test("matmul and linear, forward and backward: the f16 kernel exactly where autocast and shader-f16 meet", async () => {
      const backend = await getBackend(name);
      useBackend(backend);
      const f32 = await products(backend, false);
      const auto = await products(backend, true);
      if (!backend.autocastF16) {
        auto.forEach((v, i) => expect(same(v, f32[i])).toBe(true)); // no f16 arithmetic: f32 to the bit
        return;
      }
      // the same bits as the f16 kernel picked backend-wide by tuning, other bits than f32
      const gpu = backend as WebGPUBackend;
      const saved = gpu.tuning;
      gpu.tuning = { ...saved, f16: true };
      let half: Uint32Array[];
      try {
        half = await products(backend, false);
      } finally {
        gpu.tuning = saved;
      }
      auto.forEach((v, i) => {
        expect(same(v, half[i])).toBe(true);
        expect(same(v, f32[i])).toBe(false);
      });
      // backward() called outside the context runs the products in the precision their forward ran in
      const late = await products(backend, true, false);
      late.forEach((v, i) => expect(same(v, half[i])).toBe(true));
      const early = await products(backend, false, true);
      early.forEach((v, i) => expect(same(v, f32[i])).toBe(true));
    });

    test("per call: an autocast call and a plain one interleaved across awaits do not leak into each other", async () => {
      const backend = await getBackend(name);
      useBackend(backend);
      const f32 = await products(backend, false);
      const f16 = await products(backend, true);
      const tick = () => new Promise((r) => setTimeout(r, 1));
      const seen: string[] = [];
      const run = (autocast: boolean) => async () => {
        const t = inputs(backend);
        await tick();
        seen.push(`${autocast}:${isAutocast()}`);
        const mm = ops.matmul(t.a, t.b);
        await tick();
        seen.push(`${autocast}:${isAutocast()}`);
        const lin = ops.linear(t.x, t.w, t.bias);
        const out = [await bits(mm), await bits(lin)];
        for (const v of Object.values(t)) v.dispose();
        return out;
      };
      const [withF16, without] = await Promise.all([withAutocast(true, run(true)), run(false)()]);
      expect(seen.every((s) => s === "true:true" || s === "false:false")).toBe(true);
      expect(isAutocast()).toBe(false);
      withF16.forEach((v, i) => expect(same(v, f16[i])).toBe(true));
      without.forEach((v, i) => expect(same(v, f32[i])).toBe(true));
    });
  });
}

// ---- the check: a baby GPT with useAmp vs f32, same steps, same batches ----

const text = await readFile(join(import.meta.dir, "..", "..", "data", "tinyshakespeare.txt"), "utf8");
const tokenizer = CharTokenizer.fromText(text);
const corpus = new TokenDataset(Int32Array.from(tokenizer.encode(text.slice(0, 200_000))), 32);
const STEPS = 150;

function loader(backend: Backend, split: "train" | "val", batches: number, s: number): Loader<Batch> {
  return {
    length: batches,
    *iterate(epoch: number, skip: number) {
      const rng = new Rng(s + epoch);
      for (let i = 0; i < batches; i++) {
        const b = corpus.batch(split, 16, rng, backend);
        if (i >= skip) yield b;
        else { b.x.dispose(); b.y.dispose(); }
      }
    },
  };
}

async function train(backend: Backend, useAmp: boolean) {
  useBackend(backend);
  seed(1337);
  const model = new GPT({ vocabSize: tokenizer.vocabSize, blockSize: 32, nLayer: 2, nHead: 2, nEmbd: 64, dropout: 0 });
  const optimizer = new AdamW(model.parameters(), { lr: 3e-3, weightDecay: 0 });
  const lines: string[] = [];
  const trainer = new GenericTrainer<Batch>({
    config: new GenericTrainerConfig({ trainLoaderConfig: { dataloaderNames: ["train"] }, valLoaderConfig: { dataloaderNames: ["validation"] }, randomSeed: 1, performance: { useAmp } }),
    model, optimizers: [optimizer], log: (l) => lines.push(l),
  });
  trainer.setTrainingStep((t, b) => ({ loss: (t.model as GPT).loss(b.x, b.y) }));
  const r = await trainer.fit({ trainLoaders: [loader(backend, "train", STEPS, 11)], valLoaders: [loader(backend, "val", 8, 99)], maxSteps: STEPS });
  const scale = trainer.scaler?.scale ?? null;
  optimizer.dispose();
  model.dispose();
  return { r, lines, scale };
}

const hasGpu = backendNames.includes("webgpu");
const shaderF16 = hasGpu && !!(await getBackend("webgpu")).autocastF16;
describe.skipIf(!hasGpu)("AMP training on webgpu", () => {
  test.skipIf(!shaderF16)(
    `baby GPT, ${STEPS} steps with useAmp: ampEnabled, val loss within 0.02 of f32${shaderF16 ? "" : " (skipped: this adapter lacks shader-f16)"}`,
    async () => {
      const backend = await getBackend("webgpu");
      const full = await train(backend, false);
      const half = await train(backend, true);
      expect(full.r.ampEnabled).toBe(false);
      expect(half.r.ampEnabled).toBe(true);
      expect(half.lines.some((l) => l.startsWith("AMP off"))).toBe(false);
      expect(half.scale).toBe(65536); // the scaler ran; no inf at these magnitudes
      const [a, b] = [full.r.finalValLoss!, half.r.finalValLoss!];
      console.log(`val loss after ${STEPS} steps: f32 ${a.toFixed(4)}, AMP ${b.toFixed(4)} (train ${full.r.finalLoss.toFixed(4)} / ${half.r.finalLoss.toFixed(4)})`);
      expect(a).toBeLessThan(Math.log(tokenizer.vocabSize) - 1); // it learned something
      expect(Math.abs(a - b)).toBeLessThan(0.02);
      // and the runs differ: the f16 products really ran
      expect(half.r.lossHistory).not.toEqual(full.r.lossHistory);
    },
    300_000,
  );
});
