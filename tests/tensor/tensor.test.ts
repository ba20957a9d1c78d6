// Tensor creation and reading back (src/tensor/tensor.ts): tensor() from nested arrays and typed
// arrays, fromArray's size check, zeros/ones/full/arange/rand/randn (seeded, reproducible), item
// and toArray, the clear error for tensors of two backend instances mixed in one op, and the default
// backend per call (withBackend), which library calls given tensors never fall back on.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as k from "../../src/index.ts";
import { withoutInit } from "../../src/tensor/tensor.ts";
import { getBackend } from "../backends.ts";

let backend: k.Backend;
let other: k.Backend;
beforeAll(async () => {
  backend = await getBackend("wasm");
  k.useBackend(backend);
  other = await k.createComputeBackend("wasm"); // a second instance of the same kind
});
afterAll(() => other.dispose());

describe("creation", () => {
  test("tensor() infers the shape of nested arrays", async () => {
    await k.asyncScope(async () => {
      const a = k.tensor([[1, 2, 3], [4, 5, 6]]);
      expect([...a.shape]).toEqual([2, 3]);
      expect(a.dtype).toBe("f32");
      expect(await a.toArray()).toEqual([[1, 2, 3], [4, 5, 6]]);
      const b = k.tensor([[[1], [2]], [[3], [4]], [[5], [6]]]);
      expect([...b.shape]).toEqual([3, 2, 1]);
      expect(Array.from(await b.data())).toEqual([1, 2, 3, 4, 5, 6]);
      const c = k.tensor([0.5, -1.25]);
      expect([...c.shape]).toEqual([2]);
      expect(c.rank).toBe(1);
      expect(c.size).toBe(2);
    });
  });

  test("tensor() with a flat array and a shape, typed arrays and dtypes", async () => {
    await k.asyncScope(async () => {
      const a = k.tensor([1, 2, 3, 4, 5, 6], [3, 2]);
      expect(await a.toArray()).toEqual([[1, 2], [3, 4], [5, 6]]);
      const ids = k.tensor(Int32Array.of(3, -1, 7));
      expect(ids.dtype).toBe("i32");
      expect(await ids.data()).toEqual(Int32Array.of(3, -1, 7));
      const asInt = k.tensor([1.9, -2.9], [2], { dtype: "i32" });
      expect(await asInt.data()).toEqual(Int32Array.of(1, -2));
      const s = k.fromArray([42], []);
      expect(s.rank).toBe(0);
      expect(await s.item()).toBe(42);
    });
  });

  test("fromArray with the wrong number of values is a clear error", () => {
    expect(() => k.fromArray([1, 2, 3], [2, 2])).toThrow(/\[tensor\] 3 values do not fill shape \[2, 2\] \(4 elements\)/);
    expect(() => k.tensor([1, 2, 3, 4, 5], [2, 3])).toThrow(/\[tensor\] 5 values do not fill shape \[2, 3\]/);
    // a ragged nested array cannot fill the shape its first row implies
    expect(() => k.tensor([[1, 2], [3]])).toThrow(/\[tensor\] 3 values do not fill shape \[2, 2\]/);
    expect(() => k.zeros([2, -1])).toThrow(/\[empty\] invalid shape \[2, -1\]/);
    expect(() => k.zeros([1.5])).toThrow(/invalid shape/);
  });

  test("zeros, ones, full, arange", async () => {
    await k.asyncScope(async () => {
      expect(Array.from(await k.zeros([2, 2]).data())).toEqual([0, 0, 0, 0]);
      expect(Array.from(await k.ones([3]).data())).toEqual([1, 1, 1]);
      expect(Array.from(await k.full([2], -2.5).data())).toEqual([-2.5, -2.5]);
      const fi = k.full([3], 7, { dtype: "i32" });
      expect(fi.dtype).toBe("i32");
      expect(await fi.data()).toEqual(Int32Array.of(7, 7, 7));
      expect(await k.arange(4).data()).toEqual(Int32Array.of(0, 1, 2, 3));
      expect(await k.arange(-2, 2).data()).toEqual(Int32Array.of(-2, -1, 0, 1));
      expect(k.zeros([0, 3]).size).toBe(0);
      expect(k.ones([2], { requiresGrad: true }).requiresGrad).toBe(true);
    });
  });

  test("randn is reproducible with a seed and has the asked mean and std", async () => {
    await k.asyncScope(async () => {
      k.seed(42);
      const a = await k.randn([1000]).data();
      k.seed(42);
      const b = await k.randn([1000]).data();
      expect(Array.from(a)).toEqual(Array.from(b));
      k.seed(43);
      expect(Array.from(await k.randn([1000]).data())).not.toEqual(Array.from(a));
      // an explicit Rng does not touch the global one
      const c = await k.randn([50], { rng: new k.Rng(7) }).data();
      const d = await k.randn([50], { rng: new k.Rng(7) }).data();
      expect(Array.from(c)).toEqual(Array.from(d));
      // moments of 20000 draws (bounds: 5 standard errors)
      const n = 20000;
      const x = Array.from(await k.randn([n], { mean: 3, std: 0.5, rng: new k.Rng(1) }).data());
      const mean = x.reduce((s, v) => s + v, 0) / n;
      const std = Math.sqrt(x.reduce((s, v) => s + (v - mean) ** 2, 0) / n);
      expect(Math.abs(mean - 3)).toBeLessThan(5 * 0.5 / Math.sqrt(n));
      expect(Math.abs(std - 0.5)).toBeLessThan(5 * 0.5 / Math.sqrt(2 * n));
    });
  });

  test("rand draws uniformly in [low, high), reproducibly", async () => {
    await k.asyncScope(async () => {
      const a = Array.from(await k.rand([5000], { low: -2, high: 3, rng: new k.Rng(9) }).data());
      const b = Array.from(await k.rand([5000], { low: -2, high: 3, rng: new k.Rng(9) }).data());
      expect(a).toEqual(b);
      expect(Math.min(...a)).toBeGreaterThanOrEqual(-2);
      expect(Math.max(...a)).toBeLessThan(3);
      expect(Math.abs(a.reduce((s, v) => s + v, 0) / a.length - 0.5)).toBeLessThan(0.1);
    });
  });

  test("init with a seed makes it the default backend and seeds weight init", async () => {
    const fresh = await k.init("wasm", { seed: 123 });
    try {
      expect(k.defaultBackend()).toBe(fresh);
      const first = k.randn([8]);
      expect(first.backend).toBe(fresh);
      k.seed(123);
      const second = k.randn([8]);
      expect(Array.from(await second.data())).toEqual(Array.from(await first.data()));
      k.dispose([first, second]);
    } finally {
      k.useBackend(backend);
      fresh.dispose();
    }
  });
});

describe("withBackend (a default backend per call)", () => {
  test("sync and async calls each create on their own backend, interleaved, and the process default is untouched", async () => {
    const gate = Promise.withResolvers<void>();
    const made: Record<string, k.Tensor[]> = { mine: [], theirs: [] };
    const call = (name: "mine" | "theirs", b: k.Backend) =>
      k.withBackend(b, async () => {
        made[name].push(k.ones([2]));
        await gate.promise; // the other call runs in between
        made[name].push(k.zeros([2]), k.scope(() => k.tensor([1, 2]).mul(2)));
      });
    const a = call("mine", backend);
    const b = call("theirs", other);
    gate.resolve();
    await Promise.all([a, b]);
    expect(made.mine.map((t) => t.backend)).toEqual([backend, backend, backend]);
    expect(made.theirs.map((t) => t.backend)).toEqual([other, other, other]);
    expect(k.withBackend(other, () => k.defaultBackend())).toBe(other);
    expect(k.defaultBackend()).toBe(backend);
    k.dispose([made.mine, made.theirs]);
  });

  test("library calls given tensors never reach for the default backend", async () => {
    // a default backend that fails on any use: whatever an op, a layer, backward or AdamW creates
    // must come from its inputs' backend
    const poison = new Proxy({} as k.Backend, {
      get: (_, key) => {
        throw new Error(`the default backend was used (.${String(key)})`);
      },
    });
    k.useBackend(backend);
    const model = new k.GPT({ vocabSize: 7, blockSize: 8, nLayer: 1, nHead: 2, nEmbd: 8, dropout: 0.1 });
    const opt = new k.AdamW(model.parameters(), { lr: 1e-2 });
    const x = k.fromArray(Int32Array.of(1, 2, 3, 4), [1, 4]);
    const y = k.fromArray(Int32Array.of(2, 3, 4, 5), [1, 4]);
    const loss = await k.withBackend(poison, async () => {
      const l = k.scope(() => {
        const l = model.loss(x, y);
        l.backward();
        opt.step();
        opt.zeroGrad();
        return l;
      });
      const out = await k.generate(model, null, [1, 2], { maxNewTokens: 3, temperature: 1, seed: 1 });
      expect(out.tokens.length).toBe(3);
      return l;
    });
    expect(Number.isFinite(await loss.item())).toBe(true);
    expect(() => k.withBackend(poison, () => k.ones([1]))).toThrow(/default backend was used/); // the poison has teeth
    k.dispose([loss, x, y]);
    opt.dispose();
    model.dispose();
  });
});

describe("withoutInit (loaders)", () => {
  test("randn, rand, zeros, ones, full only allocate: right shape and dtype, no RNG draw; afterwards init works again", async () => {
    await k.asyncScope(async () => {
      k.seed(3);
      const state = k.Rng.global.getState();
      const made = withoutInit(() => [
        k.randn([4, 5], { std: 0.1 }), k.rand([3]), k.zeros([2, 2], { requiresGrad: true }), k.ones([6]), k.full([2], 5, { dtype: "i32" }),
        k.randn([2], { rng: new k.Rng(1) }),
      ]);
      expect(made.map((t) => [...t.shape])).toEqual([[4, 5], [3], [2, 2], [6], [2], [2]]);
      expect(made.map((t) => t.dtype)).toEqual(["f32", "f32", "f32", "f32", "i32", "f32"]);
      expect(made[2].requiresGrad).toBe(true);
      expect(k.Rng.global.getState()).toEqual(state);
      // data() still works (values undefined); tensors made from data are filled as usual
      const kept = withoutInit(() => k.tensor([1, 2, 3]));
      expect(Array.from(await kept.data())).toEqual([1, 2, 3]);
      expect(Array.from(await k.zeros([3]).data())).toEqual([0, 0, 0]);
      expect(Array.from(await k.ones([2]).data())).toEqual([1, 1]);
      // a throwing build leaves init on
      expect(() => withoutInit(() => { throw new Error("boom"); })).toThrow("boom");
      expect(Array.from(await k.full([2], 4).data())).toEqual([4, 4]);
      k.seed(3);
      const a = Array.from(await k.randn([8]).data());
      k.seed(3);
      withoutInit(() => k.randn([100]));
      expect(Array.from(await k.randn([8]).data())).toEqual(a);
    });
  });
});

describe("reading back", () => {
  test("item() needs exactly one element; toArray nests; dataSync reads on wasm", async () => {
    await k.asyncScope(async () => {
      const t = k.tensor([[1, 2], [3, 4]]);
      await expect(t.item()).rejects.toThrow(/\[item\] tensor .*f32\[2, 2\] has 4 elements, not 1/);
      expect(await t.sum().item()).toBe(10);
      expect(Array.from(t.dataSync())).toEqual([1, 2, 3, 4]);
      expect(String(t)).toMatch(/^Tensor\(#\d+ f32\[2, 2\] on wasm\)$/);
    });
  });
});

describe("two backend instances", () => {
  test("mixing tensors of two backends in one op is a clear error", () => {
    k.scope(() => {
      const a = k.ones([2, 2]);
      const b = k.ones([2, 2], { backend: other });
      expect(b.backend).toBe(other);
      expect(() => a.add(b)).toThrow(/\[add\] tensors live on different backends \(wasm and wasm\): move them with \.to\(\) first/);
      expect(() => k.matmul(a, b)).toThrow(/\[matmul\] tensors live on different backends/);
      expect(() => k.cat([a, b])).toThrow(/\[cat\] tensors live on different backends/);
      expect(() => k.layerNorm(a, k.ones([2], { backend: other }), k.zeros([2]))).toThrow(/\[layer_norm\] tensors live on different backends/);
      expect(() => k.embedding(k.arange(2, undefined, { backend: other }), a)).toThrow(/\[embedding\] tensors live on different backends/);
    });
  });

  test(".to() copies a tensor to another backend", async () => {
    await k.asyncScope(async () => {
      const a = k.tensor([1, 2, 3]);
      const b = await a.to(other);
      expect(b.backend).toBe(other);
      expect(Array.from(await b.mul(2).data())).toEqual([2, 4, 6]);
      expect(await a.to(backend)).toBe(a);
    });
  });
});
