// Conformance of the elementwise kernels (src/backend/kernels.ts, "elementwise") on every
// available backend against the float64 oracle, on odd sizes (SIMD tails) and every broadcast form.
import { describe, expect, test } from "bun:test";
import { backendNames, getBackend } from "../backends.ts";
import { expectKernel, runKernel, seedOf, uniform } from "./harness.ts";

const SIZES = [1, 3, 7, 33, 65, 127, 1000];
const TOL = { atol: 1e-6, rtol: 2e-6 };

describe.each(backendNames)("elementwise on %s", (name) => {
  test("fill writes every element, including the tail", async () => {
    const backend = await getBackend(name);
    for (const n of SIZES) await expectKernel(backend, "fill", [], [n], { n, value: -2.5 }, TOL);
  });

  for (const kernel of ["add", "sub", "mul", "div"] as const) {
    test(`${kernel} matches reference for same shapes, scalars and trailing blocks`, async () => {
      const backend = await getBackend(name);
      // [n, na, nb]: same shape, scalar either side, trailing block either side, both broadcast
      const cases: [number, number, number][] = [];
      for (const n of SIZES) cases.push([n, n, n], [n, n, 1], [n, 1, n]);
      cases.push([35, 35, 5], [35, 7, 35], [33, 33, 11], [30, 5, 6], [12, 1, 1], [8, 4, 8], [130, 130, 65]);
      for (const [n, na, nb] of cases) {
        const a = uniform(na, seedOf(kernel, n, na, nb, "a"));
        const b = uniform(nb, seedOf(kernel, n, na, nb, "b"), 0.5, 2); // away from 0 for div
        await expectKernel(backend, kernel, [a, b], [n], { n, na, nb }, TOL);
      }
    });
  }

  test("affine matches reference", async () => {
    const backend = await getBackend(name);
    for (const n of SIZES) {
      await expectKernel(backend, "affine", [uniform(n, seedOf("affine", n), -3, 3)], [n], { n, alpha: -1.75, beta: 0.3 }, TOL);
    }
  });

  test("pow matches reference, NaN for x < 0 with a non-integer power", async () => {
    const backend = await getBackend(name);
    for (const n of SIZES) {
      for (const p of [2, 0.5, -1.5, 3.25]) {
        await expectKernel(backend, "pow", [uniform(n, seedOf("pow", n, p), 0.1, 3)], [n], { n, p }, { atol: 1e-6, rtol: 4e-6 });
      }
      await expectKernel(backend, "pow", [uniform(n, seedOf("pow-neg", n), -3, 3)], [n], { n, p: 3 }, { atol: 1e-6, rtol: 4e-6 });
    }
    const [out] = await runKernel(backend, "pow", [Float32Array.of(-2, 4)], [2], { n: 2, p: 0.5 });
    expect(Number.isNaN(out[0])).toBe(true);
    expect(out[1]).toBe(2);
  });

  const unary = [
    ["exp", -20, 20],
    ["log", 1e-3, 100],
    ["sqrt", 0, 100],
    ["tanh", -6, 6],
    ["sigmoid", -20, 20],
    ["relu", -2, 2],
    ["gelu", -8, 8],
    ["silu", -20, 20],
  ] as const;
  for (const [kernel, lo, hi] of unary) {
    test(`${kernel} matches reference`, async () => {
      const backend = await getBackend(name);
      for (const n of SIZES) {
        await expectKernel(backend, kernel, [uniform(n, seedOf(kernel, n), lo, hi)], [n], { n }, TOL);
      }
    });
  }

  test("exp saturates like float32: 0 below −88, inf above 89, NaN stays NaN", async () => {
    const backend = await getBackend(name);
    const x = Float32Array.of(-1000, -Infinity, 1000, Infinity, NaN, 0, -86, 88.7);
    const [out] = await runKernel(backend, "exp", [x], [x.length], { n: x.length });
    expect(Array.from(out.slice(0, 4))).toEqual([0, 0, Infinity, Infinity]);
    expect(Number.isNaN(out[4])).toBe(true);
    expect(out[5]).toBe(1);
    expect(out[6] / Math.exp(-86)).toBeCloseTo(1, 5);
    expect(out[7] / Math.exp(88.7)).toBeCloseTo(1, 5);
  });

  for (const kernel of ["relu_backward", "silu_backward"] as const) {
    test(`${kernel} matches reference`, async () => {
      const backend = await getBackend(name);
      for (const n of SIZES) {
        const x = uniform(n, seedOf(kernel, n, "x"), -6, 6);
        const dout = uniform(n, seedOf(kernel, n, "dout"));
        await expectKernel(backend, kernel, [x, dout], [n], { n }, TOL);
      }
    });
  }

  test("gelu_with_grad matches reference (gelu and its derivative) and gives gelu's values bit for bit", async () => {
    const backend = await getBackend(name);
    for (const n of SIZES) {
      const x = uniform(n, seedOf("gelu_with_grad", n), -8, 8);
      const [out] = await expectKernel(backend, "gelu_with_grad", [x], [n, n], { n }, TOL);
      const [plain] = await runKernel(backend, "gelu", [x], [n], { n });
      expect(Array.from(out)).toEqual(Array.from(plain));
    }
  });

  test("dropout and dropout_backward share one mask and match reference", async () => {
    const backend = await getBackend(name);
    for (const n of [1, 7, 127, 4096]) {
      for (const [p, seed] of [[0, 1], [0.1, 7], [0.5, 12345], [0.9, 4294967295]] as const) {
        const x = uniform(n, seedOf("dropout", n, p), 0.5, 1.5);
        const [out] = await expectKernel(backend, "dropout", [x], [n], { n, p, seed }, TOL);
        const [dx] = await expectKernel(backend, "dropout_backward", [x], [n], { n, p, seed }, TOL);
        expect(Array.from(dx)).toEqual(Array.from(out));
        if (n === 4096) {
          const kept = out.filter((v) => v !== 0).length / n;
          expect(Math.abs(kept - (1 - p))).toBeLessThan(0.05);
        }
      }
    }
  });
});
