// The reduction front end (src/ops/reduce.ts): sum and mean over all axes, one axis, several axes
// (negative ones too) with and without keepdim; max over one axis. Forward against plain float64
// JS; gradients of sum and mean against finite differences; max has no gradient and says so.
import { describe, expect, test } from "bun:test";
import * as k from "../../src/index.ts";
import { backendNames, expectClose, expectGrad, indices, noLeaks, offsetOf, onBackend, rand } from "./helpers.ts";

const X_SHAPE = [3, 4, 5];

/** axis argument, keepdim */
const CASES: [string, number | number[] | undefined, boolean][] = [
  ["all axes", undefined, false],
  ["all axes, keepdim", undefined, true],
  ["axis 0", 0, false],
  ["axis 1, keepdim", 1, true],
  ["axis -1", -1, false],
  ["axes [0, 2]", [0, 2], false],
  ["axes [0, 2], keepdim", [0, 2], true],
  ["axes [2, 0, 1], keepdim", [2, 0, 1], true],
  ["axes [-1, -2]", [-1, -2], false],
  ["no axes (identity)", [], false],
];

/** A float64 reduction: combine over the reduced axes, one output per kept index. */
function hostReduce(x: Float64Array, shape: number[], axis: number | number[] | undefined, keepdim: boolean, init: number, combine: (acc: number, v: number) => number): { shape: number[]; out: Float64Array } {
  const axes = axis === undefined ? shape.map((_, i) => i) : (Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + shape.length : a));
  const kept = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const out = new Float64Array(kept.reduce((n, d) => n * d, 1)).fill(init);
  for (const idx of indices(shape)) {
    const o = offsetOf(idx.map((v, i) => (axes.includes(i) ? 0 : v)), kept);
    out[o] = combine(out[o], x[offsetOf(idx, shape)]);
  }
  return { shape: keepdim ? kept : shape.filter((_, i) => !axes.includes(i)), out };
}

describe.each(backendNames)("reduce on %s", (name) => {
  onBackend(name);

  describe("sum", () => {
    test.each(CASES)("sum over %s matches float64", async (_, axis, keepdim) => {
      await noLeaks(async () => {
        const x = rand(X_SHAPE, `sum-${_}`);
        const want = hostReduce(x.v, X_SHAPE, axis, keepdim, 0, (a, v) => a + v);
        await expectClose(k.sum(x.t, axis, keepdim), want.shape, want.out);
        await expectClose(x.t.sum(axis, keepdim), want.shape, want.out);
      });
    });

    test.each(CASES)("sum over %s: gradient matches finite differences", async (_, axis, keepdim) => {
      await noLeaks(async () => {
        await expectGrad((t) => k.sum(t, axis, keepdim), [rand(X_SHAPE, `sum-grad-${_}`).t], { tol: 1e-3, mutate: ["sum"] });
      });
    });

    test("an axis out of range is a clear error", () => {
      const x = k.zeros([2, 3]);
      expect(() => k.sum(x, 2)).toThrow(/\[sum\] axis 2 is out of range for a tensor of rank 2/);
      expect(() => k.sum(x, -3)).toThrow(/\[sum\] axis -3/);
      x.dispose();
    });
  });

  describe("mean", () => {
    test.each(CASES)("mean over %s matches float64", async (_, axis, keepdim) => {
      await noLeaks(async () => {
        const x = rand(X_SHAPE, `mean-${_}`);
        const s = hostReduce(x.v, X_SHAPE, axis, keepdim, 0, (a, v) => a + v);
        const count = x.v.length / s.out.length;
        await expectClose(k.mean(x.t, axis, keepdim), s.shape, s.out.map((v) => v / count));
        await expectClose(x.t.mean(axis, keepdim), s.shape, s.out.map((v) => v / count));
      });
    });

    test.each(CASES)("mean over %s: gradient matches finite differences", async (_, axis, keepdim) => {
      await noLeaks(async () => {
        // mean = sum, then an affine scale: sabotaging either rule must show
        await expectGrad((t) => k.mean(t, axis, keepdim).mul(20), [rand(X_SHAPE, `mean-grad-${_}`).t], { tol: 1e-3, mutate: ["sum", "affine"] });
      });
    });

    test("mean of a tensor that requires grad backpropagates (its inner sum stays alive for the graph)", async () => {
      await noLeaks(async () => {
        const x = rand([2, 3], "mean-backward").t.requireGrad();
        k.mean(x).backward();
        expect(await x.grad!.data()).toBeAllClose(new Float64Array(6).fill(1 / 6));
      });
    });
  });

  test("sumSquares sums x² into one element, or adds to a given one (global grad norms)", async () => {
    await noLeaks(async () => {
      const a = rand([3, 5], "sum-squares-a");
      const b = rand([7], "sum-squares-b");
      const sq = (v: Float64Array) => v.reduce((s, x) => s + x * x, 0);
      const acc = k.ops.sumSquares(a.t);
      await expectClose(acc, [1], [sq(a.v)]);
      expect(k.ops.sumSquares(b.t, acc)).toBe(acc);
      await expectClose(acc, [1], [sq(a.v) + sq(b.v)]);
    });
  });

  describe("max", () => {
    test.each([[0, false], [1, true], [-1, false], [2, true]] as [number, boolean][])("max over axis %d (keepdim %p) matches float64", async (axis, keepdim) => {
      await noLeaks(async () => {
        const x = rand(X_SHAPE, `max-${axis}-${keepdim}`);
        const want = hostReduce(x.v, X_SHAPE, axis, keepdim, -Infinity, Math.max);
        await expectClose(k.max(x.t, axis, keepdim), want.shape, want.out, { atol: 0, rtol: 0 });
        await expectClose(x.t.max(axis, keepdim), want.shape, want.out, { atol: 0, rtol: 0 });
      });
    });

    test("max leaves nothing behind outside a scope", async () => {
      const backend = k.defaultBackend();
      const before = backend.stats().buffers;
      const x = k.tensor([[1, 5, 2], [7, 0, 3]]);
      const m = k.max(x, 1);
      expect(Array.from(await m.data())).toEqual([5, 7]);
      m.dispose();
      x.dispose();
      expect(backend.stats().buffers).toBe(before);
    });

    test("max has no gradient: backward through it is a clear error", () => {
      const x = rand([2, 3], "max-nondiff").t.requireGrad();
      const y = k.max(x, 1).sum();
      expect(() => y.backward()).toThrow(/\[backward\] op max has no gradient/);
      y.dispose();
      x.dispose();
    });
  });
});
