// train()/eval() reach every module of every model class: a reflection walk over each model's
// object graph (fields, arrays, nested objects) finds every Module instance, and each must be in
// namedModules() and follow the mode. Dropout must honour it: identity in eval mode.

import { describe, expect, test } from "bun:test";
import { Module } from "../../src/nn/module.ts";
import { Dropout, Embedding, LayerNorm, Linear, RMSNorm } from "../../src/nn/layers.ts";
import { GPT } from "../../src/models/gpt.ts";
import { FAMILIES, familyByName, type FamilyName, type ModelConfig } from "../../src/models/registry.ts";
import { Tensor, fromArray, randn, useBackend } from "../../src/tensor/tensor.ts";
import { Rng } from "../../src/tensor/random.ts";
import { noGrad } from "../../src/autograd/tape.ts";
import { backendNames, getBackend } from "../backends.ts";

const llama = {
  vocabSize: 13, nEmbd: 8, nLayer: 2, nHead: 2, nKvHead: 1, headDim: 4, intermediateSize: 12, blockSize: 16,
  rmsNormEps: 1e-6, ropeTheta: 10000, qkvBias: false, oBias: false, mlpBias: false, tieWordEmbeddings: false,
  slidingWindow: null, attentionDropout: 0,
};

/** A tiny config per registered family: a family added to the registry must add one here (typed). */
const TINY: Record<FamilyName, ModelConfig> = {
  gpt2: { family: "gpt2", vocabSize: 11, blockSize: 8, nLayer: 2, nHead: 2, nEmbd: 8, dropout: 0.1, layerNormEps: 1e-5 },
  llama: { ...llama, family: "llama" },
  qwen2: { ...llama, family: "qwen2", qkvBias: true, tieWordEmbeddings: true },
  mistral: { ...llama, family: "mistral", slidingWindow: 16 },
};

/** Every model class (each registered family's, built tiny), and the layers. */
const MODELS: [string, () => Module][] = [
  ...FAMILIES.map((f): [string, () => Module] => [f.architecture, () => familyByName(f.name).create(TINY[f.name as FamilyName])]),
  ["LlamaForCausalLM (tied)", () => familyByName("llama").create({ ...llama, family: "llama", tieWordEmbeddings: true })],
  ["layers", () => {
    class All extends Module {
      readonly a = new Linear(2, 2);
      readonly b = new Embedding(3, 2);
      readonly c = new LayerNorm(2);
      readonly d = new RMSNorm(2);
      readonly e = new Dropout(0.2);
    }
    return new All();
  }],
];

/** Every Module reachable from root through properties (own and private-free), arrays and plain objects. */
function reachableModules(root: Module): Set<Module> {
  const found = new Set<Module>();
  const seen = new Set<object>();
  const visit = (v: unknown) => {
    if (v === null || typeof v !== "object" || seen.has(v) || v instanceof Tensor) return;
    seen.add(v);
    if (v instanceof Module) found.add(v);
    const values = Array.isArray(v) ? v : v instanceof Map ? [...v.values()] : Object.values(v);
    for (const x of values) visit(x);
    // getters on the prototype chain (ModuleList.items) hold modules too
    if (v instanceof Module) {
      for (let p = Object.getPrototypeOf(v); p && p !== Module.prototype; p = Object.getPrototypeOf(p)) {
        for (const [k, d] of Object.entries(Object.getOwnPropertyDescriptors(p))) if (d.get && k !== "headWeight") visit((v as never)[k]);
      }
    }
  };
  visit(root);
  return found;
}

describe.each(backendNames)("train/eval on %s", (name) => {
  for (const [label, make] of MODELS) {
    test(`${label}: eval() and train() reach every module the object graph holds`, async () => {
      useBackend(await getBackend(name));
      const model = make();
      const all = reachableModules(model);
      const registered = new Set(model.namedModules().map(([, m]) => m));
      for (const m of all) expect(registered.has(m), `${m.constructor.name} not in namedModules()`).toBe(true);
      model.eval();
      for (const m of all) expect(m.training, `${m.constructor.name} after eval()`).toBe(false);
      model.train();
      for (const m of all) expect(m.training, `${m.constructor.name} after train()`).toBe(true);
      if (label === "GPT2LMHeadModel") expect([...all].filter((m) => m instanceof Dropout).length).toBe(1 + 2 * 2);
      model.dispose();
    });
  }

  test("Dropout: identity in eval mode, drops in training mode", async () => {
    useBackend(await getBackend(name));
    const x = randn([256], { rng: new Rng(1) });
    const drop = new Dropout(0.5);
    const want = await x.data();
    const trained = await drop.forward(x).data();
    expect([...trained].filter((v) => v === 0).length).toBeGreaterThan(64);
    drop.eval();
    expect(await drop.forward(x).data()).toEqual(want);
    x.dispose();
  });

  test("GPT with dropout 0.5 in eval mode gives the same logits as with dropout 0", async () => {
    useBackend(await getBackend(name));
    const config = { vocabSize: 11, blockSize: 8, nLayer: 2, nHead: 2, nEmbd: 8 };
    const noisy = new GPT({ ...config, dropout: 0.5 });
    const clean = new GPT(config);
    clean.loadStateDict(new Map(await Promise.all(noisy.namedParameters().map(async ([n, t]) => [n, { shape: t.shape, data: (await t.data()) as Float32Array }] as const))));
    const idx = fromArray([1, 2, 3, 4, 5], [1, 5], { dtype: "i32" });
    const want = await noGrad(() => clean.eval().forward(idx)).data();
    expect(await noGrad(() => noisy.eval().forward(idx)).data()).toEqual(want);
    expect(await noGrad(() => noisy.train().forward(idx)).data()).not.toEqual(want);
    noisy.dispose();
    clean.dispose();
  });
});
