// AMP activation memory on WebGPU with shader-f16: under autocast the saves of linear/matmul,
// gelu, silu/mul and attention are f16 copies and each block frees the f32 activations nobody
// saved, so a baby-GPT training step's peak backend memory drops; the gradients stay within f16
// tolerance of f32; outside autocast (and on wasm) nothing changes.
import { describe, expect, test } from "bun:test";
import type { Backend } from "../../src/backend/backend.ts";
import { GPT } from "../../src/models/gpt.ts";
import { LlamaForCausalLM } from "../../src/models/llama.ts";
import type { Module } from "../../src/nn/module.ts";
import { asyncScope } from "../../src/tensor/memory.ts";
import { fromArray, randn, useBackend, type Tensor } from "../../src/tensor/tensor.ts";
import * as ops from "../../src/ops/index.ts";
import { Rng, seed } from "../../src/tensor/random.ts";
import { withAutocast } from "../../src/tensor/mode.ts";
import { backendNames, getBackend } from "../backends.ts";

type LM = Module & { loss(x: Tensor, y: Tensor): Tensor };

/** Peak backend bytes above the start of one forward + backward, the saved tensors' dtypes by op, and the grads. */
async function step(backend: Backend, model: LM, amp: boolean, vocab: number, T: number, f16Saves = true) {
  const rng = new Rng(5);
  const ids = () => fromArray(Int32Array.from({ length: 12 * T }, () => rng.int(vocab)), [12, T], { dtype: "i32", backend });
  const x = ids();
  const y = ids();
  await backend.flush();
  const base = backend.stats().allocatedBytes;
  backend.resetPeak();
  const saves: Record<string, Set<string>> = {};
  await withAutocast(amp, () => asyncScope(async () => {
    const loss = model.loss(x, y);
    const seen = new Set<Tensor>();
    const walk = (t: Tensor) => {
      if (seen.has(t) || !t.node) return;
      seen.add(t);
      for (const v of Object.values(t.node.ctx)) if (v && typeof v === "object" && "dtype" in v) (saves[t.node.op] ??= new Set()).add((v as Tensor).dtype);
      for (const i of t.node.inputs) if (i) walk(i);
    };
    walk(loss);
    loss.backward();
    await backend.flush();
  }), { f16Saves });
  const peak = backend.stats().peakBytes - base;
  const grads = await Promise.all(model.parameters().map(async (p) => Float32Array.from(await p.grad!.data())));
  for (const p of model.parameters()) p.grad = (p.grad!.dispose(), null);
  x.dispose();
  y.dispose();
  return { peak, saves, grads };
}

/** max over parameters of ‖g_amp − g_f32‖ / ‖g_f32‖ */
function gradError(a: Float32Array[], b: Float32Array[]): number {
  let worst = 0;
  a.forEach((g, i) => {
    let norm = 0;
    let diff = 0;
    for (let k = 0; k < g.length; k++) {
      norm += b[i][k] ** 2;
      diff += (g[k] - b[i][k]) ** 2;
    }
    worst = Math.max(worst, Math.sqrt(diff / Math.max(norm, 1e-30)));
  });
  return worst;
}

const models: [string, () => LM, number, number][] = [
  ["baby GPT (4 layers, 128 wide, context 64, batch 12)", () => new GPT({ vocabSize: 65, blockSize: 64, nLayer: 4, nHead: 4, nEmbd: 128, dropout: 0 }) as unknown as LM, 65, 64],
  ["small Llama (2 layers, 128 wide, GQA, context 48, batch 12)", () => new LlamaForCausalLM({
    family: "llama", vocabSize: 96, nEmbd: 128, nLayer: 2, nHead: 4, nKvHead: 2, headDim: 32, intermediateSize: 352, blockSize: 64,
    rmsNormEps: 1e-5, ropeTheta: 10000, qkvBias: false, oBias: false, mlpBias: false, tieWordEmbeddings: false, slidingWindow: null, attentionDropout: 0,
  }) as unknown as LM, 96, 48],
];

for (const name of backendNames) {
  const backend = await getBackend(name);
  const f16 = !!backend.autocastF16;
  describe(`AMP activation memory on ${name}${f16 ? "" : " (no shader-f16: f32 saves, as before)"}`, () => {
    for (const [label, make, vocab, T] of models) {
      test(`${label}: ${f16 ? "f16 saves, lower peak memory, gradients within f16 tolerance" : "the same saves and memory with and without autocast"}`, async () => {
        useBackend(backend);
        seed(11);
        const model = make();
        await step(backend, model, false, vocab, T); // warm-up: caches the model keeps (position ids)
        const full = await step(backend, model, false, vocab, T);
        const half = await step(backend, model, true, vocab, T);
        const products = await step(backend, model, true, vocab, T, false); // f16 products, f32 saves
        for (const dtypes of Object.values(full.saves)) expect([...dtypes].filter((d) => d === "f16")).toEqual([]);
        if (!f16) {
          expect(half.saves).toEqual(full.saves);
          expect(half.peak).toBe(full.peak);
          model.dispose();
          return;
        }
        expect([...half.saves.linear]).toEqual(["f16", "f32"]); // x in f16, the weight in f32
        expect((half.saves.attention ?? half.saves.qkv_attention).has("f16")).toBe(true); // GPT: qkv_attention (packed c_attn output)
        for (const op of ["layer_norm", "rms_norm", "softmax", "cross_entropy"]) if (half.saves[op]) expect(half.saves[op].has("f16")).toBe(false);
        console.log(`${label} on ${backend.device}: peak backend memory of a step ${(full.peak / 2 ** 20).toFixed(2)} MiB f32, ${(half.peak / 2 ** 20).toFixed(2)} MiB AMP (${((1 - half.peak / full.peak) * 100).toFixed(1)}% less)`);
        expect(half.peak).toBeLessThan(full.peak * 0.8);
        const err = gradError(half.grads, full.grads);
        const base = gradError(products.grads, full.grads);
        console.log(`${label}: worst relative gradient error vs f32 (L2, per parameter): ${err.toExponential(2)} with f16 saves, ${base.toExponential(2)} with f16 products alone; peak with f16 products alone ${(products.peak / 2 ** 20).toFixed(2)} MiB`);
        // f16 saves add little error beyond what the f16 products already make (~4-6% here, untrained)
        expect(err).toBeLessThan(Math.max(base * 1.25, 1e-3));
        expect(err).toBeLessThan(0.1);
        expect(err).toBeGreaterThan(0); // f16 really ran
        model.dispose();
      }, 120_000);
    }
  });
}

describe.skipIf(!backendNames.includes("webgpu"))("activationScope", () => {
  test("frees the block's unsaved activations (reading one is an error), and the gradients are those of the same saves kept alive", async () => {
    const backend = await getBackend("webgpu");
    if (!backend.autocastF16) return; // without shader-f16 it is a no-op (the wasm tests above)
    useBackend(backend);
    const rng = new Rng(3);
    const x = randn([6, 40], { backend, rng, requiresGrad: true });
    const w1 = randn([64, 40], { backend, rng, requiresGrad: true, std: 0.2 });
    const w2 = randn([40, 64], { backend, rng, requiresGrad: true, std: 0.2 });
    const grads = async (scoped: boolean) => {
      let inner: Tensor[] = [];
      const block = () => {
        const h = ops.linear(x, w1);
        const g = ops.gelu(h);
        inner = [h, g];
        return ops.linear(g, w2);
      };
      const out = await withAutocast(true, () => asyncScope(async () => {
        const y = scoped ? ops.activationScope(x, block) : block();
        if (scoped) for (const t of inner) expect(() => t.check("data")).toThrow(/released after the forward/);
        else for (const t of inner) expect(() => t.check("data")).not.toThrow();
        ops.sum(ops.mul(y, y)).backward();
        return [x, w1, w2].map((p) => { const g = p.grad!; p.grad = null; return g; });
      }));
      const data = await Promise.all(out.map(async (g) => Array.from(await g.data())));
      for (const g of out) g.dispose();
      return data;
    };
    expect(await grads(true)).toEqual(await grads(false));
    for (const t of [x, w1, w2]) t.dispose();
  });
});

describe.skipIf(!backendNames.includes("webgpu"))("the f16 product reads f16 saves as they are", () => {
  test("dW of linear and da of matmul from the f16 copies (matmul_f16_half) have the bits of the f16 kernel on the widened copies", async () => {
    const backend = await getBackend("webgpu");
    if (!backend.autocastF16) return;
    useBackend(backend);
    const run = async (f16Saves: boolean) => {
      const rng = new Rng(9);
      const x0 = randn([3, 7, 72], { backend, rng, requiresGrad: true });
      const w = randn([50, 72], { backend, rng, requiresGrad: true });
      const a = randn([33, 50], { backend, rng, requiresGrad: true });
      const out = await withAutocast(true, () => asyncScope(async () => {
        const x = ops.mul(x0, 1.5); // an activation (a graph node): its copy is f16 under f16Saves
        const y = ops.linear(x, w); // [3, 7, 50]
        const z = ops.matmul(a, ops.permute(ops.reshape(y, [21, 50]), [1, 0])); // [33, 21]: B is an activation
        ops.sum(z).backward(); // (a product z·z would keep f16 copies of z: other bits on purpose)
        return [w, a, x0].map((p) => { const g = p.grad!; p.grad = null; return g; });
      }), { f16Saves });
      const bits = await Promise.all(out.map(async (g) => new Uint32Array(Float32Array.from(await g.data()).buffer)));
      for (const t of [...out, x0, w, a]) t.dispose();
      return bits;
    };
    const direct = await run(true);
    const widened = await run(false);
    direct.forEach((b, i) => expect(Array.from(b)).toEqual(Array.from(widened[i])));
  });
});
