// The elementwise front end (src/ops/elementwise.ts): add/sub/mul/div with PyTorch broadcasting
// (same shape, 0-d, trailing [C], leading [N, 1] that needs a materialized expand, [2,1,3] vs
// [1,4,3]), scalar operands, the unary maps and activations, and dropout. Forward against plain
// float64 JS; gradients against finite differences, each also run with its rule sabotaged.
import { describe, expect, test } from "bun:test";
import * as k from "../../src/index.ts";
import { dropoutKeep } from "../reference.ts";
import { backendNames, expectClose, expectGrad, hostBinary, noLeaks, onBackend, rand } from "./helpers.ts";

const BROADCASTS: [string, number[], number[]][] = [
  ["same shape", [3, 5], [3, 5]],
  ["0-d operand", [3, 5], []],
  ["0-d first operand", [], [2, 3]],
  ["trailing [C] vs [N, C]", [4, 5], [5]],
  ["[C] vs [N, C] (first operand small)", [5], [4, 5]],
  ["leading [N, 1] vs [N, C]", [4, 5], [4, 1]],
  ["[N, 1] first", [4, 1], [4, 5]],
  ["[N, 1] vs [1, C] (both expanded)", [4, 1], [1, 5]],
  ["[2, 1, 3] vs [1, 4, 3]", [2, 1, 3], [1, 4, 3]],
  ["rank 4 with middle ones", [2, 3, 1, 4], [3, 5, 1]],
];

const GELU_K = Math.sqrt(2 / Math.PI);
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

type Binary = "add" | "sub" | "mul" | "div";
const BINARY: Record<Binary, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
};

/** name, op, reference, input range (kept away from kinks and poles), gradient tolerance */
const UNARY: [string, (x: k.Tensor) => k.Tensor, (x: number) => number, [number, number], number][] = [
  ["neg", (x) => k.neg(x), (x) => -x, [-2, 2], 1e-3],
  ["pow 2", (x) => k.pow(x, 2), (x) => x ** 2, [-2, 2], 2e-3],
  ["pow 3", (x) => k.pow(x, 3), (x) => x ** 3, [-2, 2], 2e-3],
  ["pow 0.5", (x) => k.pow(x, 0.5), (x) => x ** 0.5, [0.5, 2], 2e-3],
  ["pow -1", (x) => k.pow(x, -1), (x) => 1 / x, [0.5, 2], 5e-3],
  ["exp", (x) => k.exp(x), Math.exp, [-2, 2], 2e-3],
  ["log", (x) => k.log(x), Math.log, [0.5, 3], 2e-3],
  ["sqrt", (x) => k.sqrt(x), Math.sqrt, [0.5, 3], 2e-3],
  ["tanh", (x) => k.tanh(x), Math.tanh, [-2, 2], 2e-3],
  ["sigmoid", (x) => k.sigmoid(x), sigmoid, [-4, 4], 2e-3],
  ["relu", (x) => k.relu(x), (x) => Math.max(x, 0), [-2, 2], 1e-3],
  ["gelu", (x) => k.gelu(x), (x) => 0.5 * x * (1 + Math.tanh(GELU_K * (x + 0.044715 * x ** 3))), [-3, 3], 2e-3],
  ["silu", (x) => k.silu(x), (x) => x * sigmoid(x), [-4, 4], 2e-3],
];

const RULE_OF: Record<string, Parameters<typeof expectGrad>[2]["mutate"]> = {
  neg: ["affine"], "pow 2": ["pow"], "pow 3": ["pow"], "pow 0.5": ["pow"], "pow -1": ["pow"],
  exp: ["exp"], log: ["log"], sqrt: ["sqrt"], tanh: ["tanh"], sigmoid: ["sigmoid"], relu: ["relu"], gelu: ["gelu"], silu: ["silu"],
};

/** Values in [lo, hi) pushed at least 0.1 away from 0 (relu's kink) when the range spans it. */
function awayFromZero(shape: number[], seed: string, lo: number, hi: number): k.Tensor {
  const { v } = rand(shape, seed, lo, hi);
  return k.fromArray(v.map((x) => (lo < 0 && Math.abs(x) < 0.1 ? (x < 0 ? -0.1 : 0.1) + x : x)), shape);
}

describe.each(backendNames)("elementwise on %s", (name) => {
  onBackend(name);

  for (const op of Object.keys(BINARY) as Binary[]) {
    describe(op, () => {
      test.each(BROADCASTS)(`${op} forward, %s, matches float64`, async (_, aShape, bShape) => {
        await noLeaks(async () => {
          const a = rand(aShape, `${op}-a-${aShape}`);
          const b = rand(bShape, `${op}-b-${bShape}`, op === "div" ? 0.5 : -1, op === "div" ? 2 : 1);
          const want = hostBinary(a.v, aShape, b.v, bShape, BINARY[op]);
          const out = k[op](a.t, b.t);
          await expectClose(out, want.shape, want.out);
          // the method form is the same op
          await expectClose(a.t[op](b.t), want.shape, want.out);
        });
      });

      test.each(BROADCASTS)(`${op} gradient, %s, matches finite differences`, async (_, aShape, bShape) => {
        await noLeaks(async () => {
          const a = rand(aShape, `${op}-ga-${aShape}`, 0.5, 1.5).t; // positive: keeps div away from 0
          const b = rand(bShape, `${op}-gb-${bShape}`, 0.5, 1.5).t;
          await expectGrad((x, y) => k[op](x, y), [a, b], { tol: 5e-3, mutate: [op] });
        });
      });
    });
  }

  test("scalar operands: x + s, x − s, x · s, x / s match float64, with gradients", async () => {
    await noLeaks(async () => {
      const x = rand([3, 4], "scalar", -2, 2);
      await expectClose(k.add(x.t, 2.5), [3, 4], x.v.map((v) => v + 2.5));
      await expectClose(k.sub(x.t, 1.5), [3, 4], x.v.map((v) => v - 1.5));
      await expectClose(k.mul(x.t, -3), [3, 4], x.v.map((v) => v * -3));
      await expectClose(k.div(x.t, 4), [3, 4], x.v.map((v) => v / 4));
      for (const f of [(t: k.Tensor) => t.add(2.5), (t: k.Tensor) => t.sub(1.5), (t: k.Tensor) => t.mul(-3), (t: k.Tensor) => t.div(0.5)]) {
        await expectGrad(f, [x.t], { tol: 1e-3, mutate: ["affine"] });
      }
    });
  });

  test("shapes that do not broadcast are a clear error", () => {
    expect(() => k.add(k.zeros([2, 3]), k.zeros([4]))).toThrow(/\[add\] shapes \[2, 3\] and \[4\] cannot be broadcast/);
    expect(() => k.mul(k.zeros([2, 3]), k.zeros([3, 3]))).toThrow(/\[mul\]/);
    expect(() => k.add(k.zeros([2]), k.arange(2))).toThrow(/\[add\] expects f32/);
  });

  describe("unary", () => {
    test.each(UNARY)("%s forward matches float64", async (_, f, ref, [lo, hi]) => {
      await noLeaks(async () => {
        const x = rand([3, 7], `unary-${_}`, lo, hi);
        await expectClose(f(x.t), [3, 7], x.v.map(ref), { atol: 1e-6, rtol: 1e-5 });
      });
    });

    test.each(UNARY)("%s gradient matches finite differences", async (label, f, _, [lo, hi], tol) => {
      await noLeaks(async () => {
        const x = awayFromZero([3, 7], `unary-grad-${label}`, lo, hi);
        await expectGrad(f, [x], { tol, mutate: RULE_OF[label] });
      });
    });
  });

  test("gelu: the same values with grad (gelu_with_grad, which keeps gelu'(x) for the backward) and without", async () => {
    await noLeaks(async () => {
      const x = rand([5, 33], "gelu-modes", -6, 6).t;
      x.requiresGrad = true;
      const y = k.gelu(x);
      expect(y.node?.op).toBe("gelu");
      const plain = k.noGrad(() => k.gelu(x));
      expect(plain.node).toBeNull();
      expect(Array.from(await y.data())).toEqual(Array.from(await plain.data()));
      y.sum().backward(); // dx = gelu'(x): the kept derivative itself
      const ref = rand([5, 33], "gelu-modes", -6, 6).v.map((v) => {
        const t = Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3));
        return 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * Math.sqrt(2 / Math.PI) * (1 + 3 * 0.044715 * v * v);
      });
      await expectClose(x.grad!, [5, 33], ref, { atol: 1e-6, rtol: 1e-5 });
      x.grad!.dispose();
    });
  });

  describe("dropout", () => {
    const P = 0.3;

    test("dropout is deterministic for a given Rng seed, and the seed matters", async () => {
      await noLeaks(async () => {
        const x = k.ones([1000]);
        const a = await k.dropout(x, P, true, new k.Rng(7)).data();
        const b = await k.dropout(x, P, true, new k.Rng(7)).data();
        const c = await k.dropout(x, P, true, new k.Rng(8)).data();
        expect(Array.from(a)).toEqual(Array.from(b));
        expect(Array.from(a)).not.toEqual(Array.from(c));
      });
    });

    test("dropout zeroes a fraction ≈ p and scales the rest by 1/(1 − p)", async () => {
      await noLeaks(async () => {
        const n = 20000;
        const x = rand([n], "dropout-x", 0.5, 1.5);
        const seed = new k.Rng(11).nextU32(); // the seed dropout draws from its Rng
        const out = await k.dropout(x.t, P, true, new k.Rng(11)).data();
        let dropped = 0;
        const want = new Float64Array(n);
        for (let i = 0; i < n; i++) {
          if (out[i] === 0) dropped++;
          want[i] = dropoutKeep(i, P, seed) ? x.v[i] / (1 - P) : 0;
        }
        // 4 standard deviations of a Binomial(n, p) fraction
        expect(Math.abs(dropped / n - P)).toBeLessThan(4 * Math.sqrt((P * (1 - P)) / n));
        expect(out).toBeAllClose(want, { atol: 0, rtol: 1e-6 });
        // the mean is preserved in expectation
        expect(Math.abs(Array.from(out).reduce((s, v) => s + v, 0) / x.v.reduce((s, v) => s + v, 0) - 1)).toBeLessThan(0.03);
      });
    });

    test("dropout is the identity when p = 0 or not training", async () => {
      const x = rand([4, 5], "dropout-id");
      expect(k.dropout(x.t, 0)).toBe(x.t);
      expect(k.dropout(x.t, 0.5, false)).toBe(x.t);
      expect(() => k.dropout(x.t, 1)).toThrow(/\[dropout\] p must be in \[0, 1\)/);
      x.t.dispose();
    });

    test("dropout gradient (same mask via a fresh Rng each call) matches finite differences", async () => {
      await noLeaks(async () => {
        const x = rand([6, 9], "dropout-grad").t;
        const r = await expectGrad((t) => k.dropout(t, P, true, new k.Rng(3)), [x], { tol: 1e-3, mutate: ["dropout"] });
        // dropped elements get exactly zero gradient, kept ones 1/(1 − p) times the weight
        const zeros = r.analytic[0].filter((g) => g === 0).length;
        expect(zeros).toBeGreaterThan(0);
        expect(zeros).toBeLessThan(x.size);
      });
    });
  });
});
