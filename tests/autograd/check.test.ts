// The finite-difference gradient checker (src/autograd/check.ts) that every op test relies on:
// it agrees with a known gradient, reports a wrong rule, and (through its fixed random output
// weights) catches a rule that ignores the incoming gradient, which a plain sum would not.
import { beforeAll, describe, expect, test } from "bun:test";
import * as k from "../../src/index.ts";
import { vjp } from "../../src/autograd/rules.ts";
import { getBackend } from "../backends.ts";

beforeAll(async () => {
  k.useBackend(await getBackend("wasm"));
});

/** Runs fn with vjp[op] replaced. */
function withRule<T>(op: "exp" | "mul", rule: (g: k.Tensor, node: never) => (k.Tensor | null)[], fn: () => T): T {
  const table = vjp as Record<string, unknown>;
  const saved = table[op];
  table[op] = rule;
  try {
    return fn();
  } finally {
    table[op] = saved;
  }
}

describe("checkGradients", () => {
  test("numeric and analytic gradients of x·x agree with 2x·w", () => {
    k.scope(() => {
      const x = k.tensor([0.5, -1, 2, 3]);
      const r = k.checkGradients((t) => t.mul(t), [x]);
      expect(r.maxError).toBeLessThan(1e-3);
      // the weights are sin(i·12.9898 + 0.5)·0.5 + 0.75
      const want = [0.5, -1, 2, 3].map((v, i) => 2 * v * (Math.sin(i * 12.9898 + 0.5) * 0.5 + 0.75));
      expect(r.analytic[0]).toBeAllClose(want, { atol: 1e-5, rtol: 1e-5 });
      expect(r.numeric[0]).toBeAllClose(want, { atol: 1e-3, rtol: 1e-3 });
    });
  });

  test("a wrong rule is reported", () => {
    k.scope(() => {
      const x = k.tensor([0.5, -1, 2, 3]);
      const r = withRule("mul", (g, { ctx }: never) => [k.mul(g, (ctx as { b: k.Tensor }).b), null], () => k.checkGradients((t) => t.mul(t), [x]));
      expect(r.maxError).toBeGreaterThan(0.2); // half the gradient is missing
    });
  });

  test("a rule that ignores the incoming gradient is caught thanks to the output weights", () => {
    k.scope(() => {
      const x = k.tensor([[0.1, -0.3, 0.7], [0.2, 0.4, -0.5]]);
      // d exp(x) = exp(x), but without the g factor: right only when every g is 1
      const r = withRule("exp", (_g, { ctx }: never) => [k.mul((ctx as { out: k.Tensor }).out, 1)], () => k.checkGradients((t) => t.exp(), [x]));
      expect(r.maxError).toBeGreaterThan(0.1);
    });
  });

  test("inputs over maxElements are sampled, i32 inputs are skipped", () => {
    k.scope(() => {
      const x = k.randn([10, 20], { rng: new k.Rng(1) });
      const ids = k.arange(3);
      const w = k.randn([5, 20], { rng: new k.Rng(2) });
      const r = k.checkGradients((a, i, b) => k.embedding(i, b).sum().add(a.mul(a).sum()), [x, ids, w], { maxElements: 16 });
      expect(r.maxError).toBeLessThan(2e-3);
      expect(r.numeric[0].filter((v) => v !== 0).length).toBeLessThanOrEqual(17);
      expect(Array.from(r.numeric[1])).toEqual([0, 0, 0]);
    });
  });

  test("checkGradientsAsync takes the same steps: the same result, and reused finite differences only redo the analytic side", async () => {
    const backend = k.defaultBackend();
    const before = backend.stats().buffers;
    const x = k.randn([3, 4], { rng: new k.Rng(5) });
    const sync = k.checkGradients((t) => t.mul(t).exp(), [x]);
    const async = await k.checkGradientsAsync((t) => t.mul(t).exp(), [x]);
    expect(async).toEqual(sync);
    const saved = vjp.exp;
    (vjp as Record<string, unknown>).exp = (_g: k.Tensor, { ctx }: never) => [k.mul((ctx as { out: k.Tensor }).out, 1)];
    const wrong = await k.checkGradientsAsync((t) => t.mul(t).exp(), [x], { numeric: sync.numeric }).finally(() => (vjp.exp = saved));
    expect(wrong.numeric).toBe(sync.numeric);
    expect(wrong.maxError).toBeGreaterThan(0.1);
    x.dispose();
    expect(backend.stats().buffers).toBe(before); // every tensor the checks made was freed
  });

  test("a read that fails mid-check frees what the check had made", async () => {
    const backend = k.defaultBackend();
    const before = backend.stats().buffers;
    const x = k.randn([4], { rng: new k.Rng(6) });
    const data = k.Tensor.prototype.data;
    let reads = 0;
    k.Tensor.prototype.data = function (this: k.Tensor) {
      if (++reads === 3) return Promise.reject(new Error("device lost"));
      return data.call(this);
    };
    try {
      await expect(k.checkGradientsAsync((t) => t.mul(t), [x])).rejects.toThrow("device lost");
    } finally {
      k.Tensor.prototype.data = data;
    }
    x.dispose();
    expect(backend.stats().buffers).toBe(before);
  });
});
