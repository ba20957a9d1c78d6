// Conformance of sum, max and sum_squares on every backend: [outer, len, inner] views with inner
// 1 (row reductions) and > 1 (column reductions, odd widths), first-argmax ties, accumulate.
import { describe, expect, test } from "bun:test";
import { backendNames, getBackend } from "../backends.ts";
import { expectKernel, runKernel, seedOf, uniform } from "./harness.ts";

const SHAPES: [number, number, number][] = [
  [1, 1, 1], [1, 7, 1], [3, 33, 1], [2, 1000, 1], [1, 5, 3], [3, 7, 8], [2, 65, 17], [1, 127, 33], [4, 3, 65], [1, 768, 127],
];

describe.each(backendNames)("reduce on %s", (name) => {
  test("sum matches reference", async () => {
    const backend = await getBackend(name);
    for (const [outer, len, inner] of SHAPES) {
      const x = uniform(outer * len * inner, seedOf("sum", outer, len, inner));
      await expectKernel(backend, "sum", [x], [outer * inner], { outer, len, inner }, { atol: 1e-6 * Math.sqrt(len), rtol: 1e-6 });
    }
  });

  test("max matches reference (values and first argmax)", async () => {
    const backend = await getBackend(name);
    for (const [outer, len, inner] of SHAPES) {
      const x = uniform(outer * len * inner, seedOf("max", outer, len, inner));
      await expectKernel(backend, "max", [x], [outer * inner, outer * inner], { outer, len, inner }, { atol: 0, rtol: 0 });
    }
    // ties: the first index wins
    const [out, idx] = await runKernel(backend, "max", [Float32Array.of(1, 3, 3, 2, -1, -1)], [2, 2], { outer: 2, len: 3, inner: 1 });
    expect(Array.from(out)).toEqual([3, 2]);
    expect(Array.from(idx)).toEqual([1, 0]);
  });

  test("sum_squares matches reference, with and without accumulate", async () => {
    const backend = await getBackend(name);
    for (const n of [1, 3, 7, 33, 65, 127, 100000]) {
      const x = uniform(n, seedOf("sum_squares", n));
      const tol = { atol: 1e-6, rtol: 2e-6 };
      await expectKernel(backend, "sum_squares", [x], [Float32Array.of(NaN)], { n, accumulate: 0 }, tol);
      await expectKernel(backend, "sum_squares", [x], [Float32Array.of(2.5)], { n, accumulate: 1 }, tol);
    }
  });
});
