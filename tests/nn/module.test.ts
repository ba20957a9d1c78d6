// Module surgery and freezing: getSubmodule/setSubmodule (a replaced child runs in the parent's
// forward), namedModules, fields as children, freeze/unfreeze/trainableParameters, and the tape
// skipping the gradient products only frozen parameters need (counted kernel launches).

import { describe, expect, test } from "bun:test";
import { Module, ModuleList } from "../../src/nn/module.ts";
import { Dropout, Linear } from "../../src/nn/layers.ts";
import { GPT } from "../../src/models/gpt.ts";
import { LlamaForCausalLM } from "../../src/models/llama.ts";
import { fromArray, randn, useBackend, type Tensor } from "../../src/tensor/tensor.ts";
import { Rng } from "../../src/tensor/random.ts";
import { noGrad } from "../../src/autograd/tape.ts";
import * as ops from "../../src/ops/index.ts";
import type { Backend } from "../../src/backend/backend.ts";
import { backendNames, getBackend } from "../backends.ts";

const tinyGPT = { vocabSize: 11, blockSize: 8, nLayer: 2, nHead: 2, nEmbd: 8 };

/** Counts kernel launches by name while fn runs (through run and runGroup, each launch once). */
function countLaunches(backend: Backend, fn: () => void): Map<string, number> {
  const counts = new Map<string, number>();
  const bump = (k: string) => counts.set(k, (counts.get(k) ?? 0) + 1);
  type Run = (kernel: string, ...rest: unknown[]) => void;
  const b = backend as unknown as { run: Run; runGroup?: (launches: readonly { kernel: string }[]) => void };
  const run = b.run, runGroup = b.runGroup;
  const own = { run: Object.hasOwn(b, "run"), runGroup: Object.hasOwn(b, "runGroup") };
  const counting: Run = function (this: unknown, kernel, ...rest) {
    bump(kernel);
    return run.call(this, kernel, ...rest);
  };
  b.run = counting;
  if (runGroup) {
    b.runGroup = function (this: unknown, launches) {
      for (const l of launches) bump(l.kernel);
      b.run = run; // a fallback to run() is the same launches
      try {
        return runGroup.call(this, launches);
      } finally {
        b.run = counting;
      }
    };
  }
  try {
    fn();
  } finally {
    if (own.run) b.run = run;
    else delete (b as { run?: Run }).run;
    if (own.runGroup) b.runGroup = runGroup;
    else delete b.runGroup;
  }
  return counts;
}

/** Records its calls and passes x through an inner module. */
class Spy extends Module {
  calls = 0;
  constructor(readonly inner: Linear) {
    super();
  }
  forward(x: Tensor): Tensor {
    this.calls++;
    return this.inner.forward(x);
  }
}

describe.each(backendNames)("module surgery on %s", (name) => {
  test("getSubmodule walks dotted paths; an unknown path names where it stops", async () => {
    useBackend(await getBackend(name));
    const model = new GPT(tinyGPT);
    expect(model.getSubmodule("")).toBe(model);
    expect(model.getSubmodule("transformer.h.1.attn.c_attn")).toBe(model.transformer.h.items[1].attn.c_attn);
    expect(() => model.getSubmodule("transformer.h.5.attn")).toThrow(/transformer\.h \(ModuleList\) has no child "5"; its children: 0, 1/);
    expect(() => model.getSubmodule("transformer.wte.nope")).toThrow(/transformer\.wte \(Embedding\) has no child "nope"; its children: none/);
    model.dispose();
  });

  test("setSubmodule: the replacement runs in the parent's forward and owns the state-dict names", async () => {
    useBackend(await getBackend(name));
    const model = new GPT(tinyGPT).eval();
    const idx = fromArray([1, 2, 3, 4], [1, 4], { dtype: "i32" });
    const before = await noGrad(() => model.forward(idx)).data();
    const old = model.getSubmodule("transformer.h.0.mlp.c_fc") as Linear;
    const spy = new Spy(old);
    model.setSubmodule("transformer.h.0.mlp.c_fc", spy);
    expect(model.transformer.h.items[0].mlp.c_fc as unknown).toBe(spy); // the field follows the tree
    expect(model.getSubmodule("transformer.h.0.mlp.c_fc")).toBe(spy);
    const after = await noGrad(() => model.forward(idx)).data();
    expect(spy.calls).toBe(1);
    expect(after).toBeAllClose(before, { atol: 0, rtol: 0 });
    expect(model.stateDict().has("transformer.h.0.mlp.c_fc.inner.weight")).toBe(true);
    expect(model.stateDict().has("transformer.h.0.mlp.c_fc.weight")).toBe(false);
    expect(() => model.setSubmodule("transformer.h.0.mlp.nope", spy)).toThrow(/has no child "nope"/);
    model.dispose();
  });

  test("setSubmodule on a ModuleList item replaces that item in forward's loop", async () => {
    useBackend(await getBackend(name));
    const model = new GPT(tinyGPT).eval();
    const blocks = model.transformer.h;
    const first = blocks.items[0];
    model.setSubmodule("transformer.h.1", first); // block 0 twice: a different function
    expect(blocks.items[1]).toBe(first);
    expect(blocks.length).toBe(2);
    // shared module: parameters and modules listed once
    expect(model.namedParameters().some(([n]) => n.startsWith("transformer.h.1."))).toBe(false);
    expect(model.namedModules().filter(([, m]) => m === first).length).toBe(1);
    const idx = fromArray([1, 2, 3], [1, 3], { dtype: "i32" });
    const x = noGrad(() => {
      const tr = model.transformer;
      const pos = fromArray([0, 1, 2], [3], { dtype: "i32" });
      let h = tr.wte.forward(idx).add(tr.wpe.forward(pos));
      h = first.forward(first.forward(h));
      return ops.linear(tr.ln_f.forward(h), tr.wte.weight, null, "out_in");
    });
    expect(await noGrad(() => model.forward(idx)).data()).toBeAllClose(await x.data(), { atol: 1e-6, rtol: 0 });
    model.dispose();
  });

  test("namedModules: every module once, with its path, this module as \"\"", async () => {
    useBackend(await getBackend(name));
    const model = new GPT({ ...tinyGPT, nLayer: 1 });
    const paths = model.namedModules().map(([p]) => p);
    expect(paths[0]).toBe("");
    for (const p of ["transformer", "transformer.wte", "transformer.drop", "transformer.h.0.attn.resid_dropout", "transformer.h.0.mlp.dropout", "transformer.ln_f"]) {
      expect(paths).toContain(p);
    }
    expect(new Set(paths).size).toBe(paths.length);
    model.dispose();
  });

  test("a Module-valued field is a child without module(); an array of modules is refused", async () => {
    useBackend(await getBackend(name));
    class Two extends Module {
      readonly first = new Linear(3, 3);
      readonly drop = new Dropout(0.5);
    }
    const two = new Two();
    expect(two.children().map(([n]) => n)).toEqual(["first", "drop"]);
    expect(two.namedParameters().map(([n]) => n)).toEqual(["first.weight", "first.bias"]);
    two.eval();
    expect(two.drop.training).toBe(false);
    class Listy extends Module {
      readonly layers = [new Linear(2, 2)];
    }
    expect(() => new Listy().parameters()).toThrow(/Listy\.layers is an array of modules: use ModuleList/);
    const list = new ModuleList([new Linear(2, 2), new Linear(2, 2)]);
    expect(list.namedParameters().map(([n]) => n)).toEqual(["0.weight", "0.bias", "1.weight", "1.bias"]);
    two.dispose();
    list.dispose();
  });

  test("freeze/unfreeze/trainableParameters; frozen parameters get no gradient, the rest the same one", async () => {
    useBackend(await getBackend(name));
    const model = new GPT(tinyGPT);
    const idx = fromArray([1, 2, 3, 4, 5, 6], [2, 3], { dtype: "i32" });
    const targets = fromArray([2, 3, 4, 5, 6, 7], [2, 3], { dtype: "i32" });
    model.loss(idx, targets).backward();
    const full = new Map<string, Float32Array>();
    for (const [n, p] of model.namedParameters()) {
      full.set(n, (await p.grad!.data()) as Float32Array);
      p.grad!.dispose();
      p.grad = null;
    }
    expect(model.trainableParameters().length).toBe(model.parameters().length);
    model.freeze();
    expect(model.trainableParameters()).toEqual([]);
    model.getSubmodule("transformer.h.1.mlp").unfreeze();
    const trainable = model.namedParameters().filter(([, p]) => p.requiresGrad).map(([n]) => n);
    expect(trainable).toEqual(["transformer.h.1.mlp.c_fc.weight", "transformer.h.1.mlp.c_fc.bias", "transformer.h.1.mlp.c_proj.weight", "transformer.h.1.mlp.c_proj.bias"]);
    expect(model.trainableParameters()).toEqual(trainable.map((n) => model.stateDict().get(n)!));
    model.loss(idx, targets).backward();
    for (const [n, p] of model.namedParameters()) {
      if (!trainable.includes(n)) {
        expect(p.grad, n).toBeNull();
        continue;
      }
      expect(await p.grad!.data(), n).toBeAllClose(full.get(n)!, { atol: 1e-6, rtol: 1e-5 });
    }
    model.dispose();
  });

  for (const layout of ["out_in", "in_out"] as const) {
    test(`a frozen Linear (${layout}) launches no dW matmul and no bias sum; dx is unchanged`, async () => {
      const backend = await getBackend(name);
      useBackend(backend);
      const lin = new Linear(8, 6, { layout });
      const rng = new Rng(3);
      const x = randn([4, 8], { rng, requiresGrad: true });
      const grads = async () => {
        const y = lin.forward(x).sum();
        const counts = countLaunches(backend, () => y.backward());
        const dx = (await x.grad!.data()) as Float32Array;
        x.grad!.dispose();
        x.grad = null;
        return { counts, dx };
      };
      const trained = await grads();
      expect(trained.counts.get("matmul")).toBe(2); // dx and dW
      expect(trained.counts.get("sum")).toBe(1); // db
      lin.freeze();
      const frozen = await grads();
      expect(frozen.counts.get("matmul")).toBe(1); // dx only
      expect(frozen.counts.get("sum") ?? 0).toBe(0);
      expect(lin.weight.grad).not.toBeNull(); // from the first, unfrozen backward: kept, not touched
      expect(frozen.dx).toBeAllClose(trained.dx, { atol: 0, rtol: 0 });
      // input frozen too: nothing is recorded, so backward has nothing to do
      const c = fromArray([1, 2, 3, 4, 5, 6, 7, 8], [1, 8]);
      expect(() => lin.forward(c).sum().backward()).toThrow(/does not require grad/);
      lin.dispose();
      x.dispose();
    });
  }

  test("matmul with a frozen operand computes only the other operand's gradient", async () => {
    const backend = await getBackend(name);
    useBackend(backend);
    const rng = new Rng(5);
    for (const [aShape, bShape] of [[[3, 4], [4, 5]], [[2, 3, 4], [4, 5]]]) {
      const a = randn(aShape, { rng, requiresGrad: true });
      const b = randn(bShape, { rng }); // constant: no gradient wanted
      const loss = ops.matmul(a, b).sum();
      const counts = countLaunches(backend, () => loss.backward());
      expect(counts.get("matmul"), `${aShape}·${bShape}`).toBe(1);
      expect(b.grad).toBeNull();
      const ga = await a.grad!.data();
      b.requiresGrad = true;
      a.grad!.dispose();
      a.grad = null;
      ops.matmul(a, b).sum().backward();
      expect(await a.grad!.data()).toBeAllClose(ga, { atol: 1e-6, rtol: 0 });
      a.dispose();
      b.dispose();
    }
  });

  test("Llama's untied lm_head runs through the child (a replaced head takes effect)", async () => {
    useBackend(await getBackend(name));
    const model = new LlamaForCausalLM({
      family: "llama", vocabSize: 13, nEmbd: 8, nLayer: 1, nHead: 2, nKvHead: 1, headDim: 4, intermediateSize: 12, blockSize: 16,
      rmsNormEps: 1e-6, ropeTheta: 10000, qkvBias: false, oBias: false, mlpBias: false, tieWordEmbeddings: false,
      slidingWindow: null, attentionDropout: 0,
    });
    const spy = new Spy(model.lm_head!);
    model.setSubmodule("lm_head", spy);
    noGrad(() => model.forward(fromArray([1, 2], [1, 2], { dtype: "i32" })));
    expect(spy.calls).toBe(1);
    model.dispose();
  });
});
