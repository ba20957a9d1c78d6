// Reverse-mode autograd (src/autograd/tape.ts): gradients accumulate into .grad across backward
// calls, a tensor used twice gets the summed gradient, noGrad records nothing, requiresGrad
// propagates (and detach cuts it), the clear errors (non-scalar root without a gradient, a wrong
// gradient shape, a root that needs no grad, a disposed tensor on the path, a graph an earlier
// backward freed), and backward's memory: leaf gradients outlive scopes, rules leave nothing behind.
import { beforeAll, describe, expect, test } from "bun:test";
import * as k from "../../src/index.ts";
import { getBackend } from "../backends.ts";

let backend: k.Backend;
beforeAll(async () => {
  backend = await getBackend("wasm");
  k.useBackend(backend);
});

const values = async (t: k.Tensor | null) => Array.from(await t!.data());

describe("tape", () => {
  test("gradients accumulate into .grad over two backward calls", async () => {
    await k.asyncScope(async () => {
      const x = k.tensor([1, -2, 3], undefined, { requiresGrad: true });
      x.mul(3).sum().backward();
      expect(await values(x.grad)).toEqual([3, 3, 3]);
      x.mul(x).sum().backward(); // + 2x
      expect(await values(x.grad)).toEqual([5, -1, 9]);
    });
  });

  test("a tensor used twice gets the summed gradient (x·x, x + x, two branches)", async () => {
    await k.asyncScope(async () => {
      const x = k.tensor([0.5, -1.5, 2], undefined, { requiresGrad: true });
      x.mul(x).sum().backward();
      expect(await values(x.grad)).toEqual([1, -3, 4]);
      x.grad!.dispose();
      x.grad = null;
      x.add(x).sum().backward();
      expect(await values(x.grad)).toEqual([2, 2, 2]);
      x.grad!.dispose();
      x.grad = null;
      // y = exp(x) used by two later ops: d/dx (y·y + y) = (2y + 1)·y
      const y = x.exp();
      y.mul(y).add(y).sum().backward();
      const want = [0.5, -1.5, 2].map((v) => (2 * Math.exp(v) + 1) * Math.exp(v));
      expect(await x.grad!.data()).toBeAllClose(want, { atol: 1e-5, rtol: 1e-5 });
    });
  });

  test("one tensor as several inputs of one op (x @ x, x · x broadcast, self-attention) gets every contribution", () => {
    k.scope(() => {
      const x = k.tensor([[0.3, -0.8, 0.5], [1.1, 0.2, -0.4], [0.7, 0.9, -1.2]]);
      expect(k.checkGradients((t) => t.matmul(t), [x]).maxError).toBeLessThan(2e-3);
      expect(k.checkGradients((t) => t.mul(t.narrow(0, 1, 1)), [x]).maxError).toBeLessThan(2e-3);
      const q = k.randn([1, 4, 2, 4], { rng: new k.Rng(4) });
      expect(k.checkGradients((t) => k.attention(t, t, t), [q]).maxError).toBeLessThan(2e-3);
    });
  });

  test("split and overlapping narrow pieces add into one gradient; a gradient shared with another tensor is not added into", async () => {
    await k.asyncScope(async () => {
      const x = k.tensor([[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]], undefined, { requiresGrad: true });
      const [a, b, c] = k.split(x.mul(1), [2, 2, 2], -1);
      const wide = x.mul(1).narrow(1, 1, 4);
      a.sum().add(b.mul(2).sum()).add(c.mul(3).sum()).add(wide.mul(10).sum()).add(x.mul(100).sum()).backward();
      expect(await values(x.grad)).toEqual([101, 111, 112, 112, 113, 103, 101, 111, 112, 112, 113, 103]);
      x.grad!.dispose();
      x.grad = null;
      // m + y hands m and the leaf y one gradient storage; y's stays in the tape until the end, so
      // m's narrow piece, whose rule runs after the add's, must not add into it
      const y = k.ones([2, 6], { requiresGrad: true });
      const m = x.mul(2);
      m.narrow(1, 0, 1).mul(5).sum().add(m.add(y).sum()).backward();
      expect(await values(y.grad)).toEqual(new Array(12).fill(1));
      expect(await values(x.grad)).toEqual([12, 2, 2, 2, 2, 2, 12, 2, 2, 2, 2, 2]);
    });
  });

  test("only leaves that require grad receive .grad", async () => {
    await k.asyncScope(async () => {
      const x = k.tensor([1, 2], undefined, { requiresGrad: true });
      const c = k.tensor([3, 4]);
      const y = x.mul(c);
      y.sum().backward();
      expect(await values(x.grad)).toEqual([3, 4]);
      expect(c.grad).toBeNull();
      expect(y.grad).toBeNull(); // an intermediate, as in PyTorch
    });
  });

  test("noGrad records nothing, and restores grad mode even when fn throws", () => {
    k.scope(() => {
      const x = k.tensor([1, 2], undefined, { requiresGrad: true });
      const y = k.noGrad(() => {
        expect(k.isGradEnabled()).toBe(false);
        return x.mul(2).exp();
      });
      expect(y.requiresGrad).toBe(false);
      expect(y.node).toBeNull();
      expect(k.isGradEnabled()).toBe(true);
      expect(() => k.noGrad(() => { throw new Error("boom"); })).toThrow("boom");
      expect(k.isGradEnabled()).toBe(true);
      // nested noGrad keeps grad off until the outermost one ends
      k.noGrad(() => {
        k.noGrad(() => {});
        expect(k.isGradEnabled()).toBe(false);
      });
    });
  });

  test("requiresGrad propagates through ops; detach and constants cut it", () => {
    k.scope(() => {
      const x = k.tensor([1, 2], undefined, { requiresGrad: true });
      const c = k.tensor([3, 4]);
      expect(x.requiresGrad).toBe(true);
      expect(c.requiresGrad).toBe(false);
      const y = x.mul(c);
      expect(y.requiresGrad).toBe(true);
      expect(y.node?.op).toBe("mul");
      expect(y.add(c).sum().requiresGrad).toBe(true);
      expect(c.mul(c).exp().requiresGrad).toBe(false);
      expect(c.mul(c).node).toBeNull();
      const d = y.detach();
      expect(d.requiresGrad).toBe(false);
      expect(d.node).toBeNull();
      expect(d.mul(2).requiresGrad).toBe(false);
      expect(k.tensor([1]).requireGrad().requiresGrad).toBe(true);
    });
  });

  test("backward on a non-scalar without a gradient is a clear error; with one it works", async () => {
    await k.asyncScope(async () => {
      const x = k.tensor([1, 2, 3], undefined, { requiresGrad: true });
      const y = x.mul(2);
      expect(() => y.backward()).toThrow(/\[backward\] grad can be implied only for a one-element tensor, not .*f32\[3\]/);
      y.backward(k.tensor([1, 10, 100]));
      expect(await values(x.grad)).toEqual([2, 20, 200]);
    });
  });

  test("backward from a tensor that needs no grad is a clear error", () => {
    k.scope(() => {
      const y = k.tensor([1, 2]).sum();
      expect(() => y.backward()).toThrow(/\[backward\] the tensor does not require grad/);
    });
  });

  test("backward through a disposed tensor is a clear error", () => {
    k.scope(() => {
      const x = k.tensor([1, 2], undefined, { requiresGrad: true });
      const y = x.mul(2);
      const loss = y.exp().sum();
      y.dispose();
      expect(() => loss.backward()).toThrow(/\[backward\] tensor .* was disposed/);
      // a disposed leaf, and a disposed root
      const w = k.tensor([1, 2], undefined, { requiresGrad: true });
      const l2 = w.mul(3).sum();
      w.dispose();
      expect(() => l2.backward()).toThrow(/\[backward\] tensor .* was disposed/);
      const l3 = k.tensor([5], undefined, { requiresGrad: true }).mul(2).sum();
      l3.dispose();
      expect(() => l3.backward()).toThrow(/\[backward\] tensor .* was disposed/);
    });
  });

  test("a gradient that does not match the root's shape is a clear error", () => {
    k.scope(() => {
      const x = k.tensor([1, 2, 3], undefined, { requiresGrad: true });
      expect(() => x.mul(2).backward(k.tensor([1, 1]))).toThrow(/\[backward\] grad .*f32\[2\] does not match the shape of .*f32\[3\]/);
      expect(x.grad).toBeNull();
    });
  });

  test("backward through a graph an earlier backward freed is a clear error, not a silent wrong gradient", async () => {
    await k.asyncScope(async () => {
      const x = k.tensor([1, 2, 3], undefined, { requiresGrad: true });
      const y = x.mul(x);
      const l1 = y.sum();
      const l2 = y.mul(2).sum(); // shares y's graph with l1
      l1.backward();
      expect(await values(x.grad)).toEqual([2, 4, 6]);
      expect(() => l2.backward()).toThrow(/\[backward\] the graph through .*f32\[3\] was freed by an earlier backward\(\)/);
      expect(() => l1.backward()).toThrow(/was freed by an earlier backward\(\)/);
      expect(await values(x.grad)).toEqual([2, 4, 6]);
      expect(y.grad).toBeNull();
      // a fresh forward works, and its gradient accumulates
      x.mul(x).mul(2).sum().backward();
      expect(await values(x.grad)).toEqual([6, 12, 18]);
    });
  });

  test("leaf gradients outlive the scope where backward ran", async () => {
    const x = k.tensor([1, 2], undefined, { requiresGrad: true });
    k.scope(() => {
      x.mul(x).sum().backward();
    });
    expect(x.grad!.disposed).toBe(false);
    expect(await values(x.grad)).toEqual([2, 4]);
    x.dispose();
    expect(x.grad).toBeNull();
  });

  test("backward leaves nothing behind outside a scope: disposing what the caller holds frees everything", () => {
    const before = backend.stats().buffers;
    const x = k.tensor([[0.5, 1.5, 2], [1, 3, 0.25]], undefined, { requiresGrad: true });
    const w = k.tensor([[1, 2], [3, 4], [5, 6]], undefined, { requiresGrad: true });
    // every op here is held by the caller, so only backward's own temporaries could leak;
    // each rule below builds intermediates (pow: x^(p−1)·p, div: g·a/b², sigmoid: s·(1 − s), matmul: views)
    const a = x.pow(3);
    const b = a.div(x);
    const c = b.sigmoid();
    const d = c.matmul(w);
    const e = d.tanh();
    const loss = e.sum();
    loss.backward();
    expect(x.grad).not.toBeNull();
    expect(w.grad).not.toBeNull();
    k.dispose([x, w, a, b, c, d, e, loss]);
    expect(backend.stats().buffers).toBe(before);
  });
});
