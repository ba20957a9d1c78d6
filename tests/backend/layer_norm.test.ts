// Conformance of layer_norm and layer_norm_backward on every backend: odd widths (SIMD tails),
// rows with a large offset (the two-pass variance must not cancel), dweight/dbias summed over rows.
import { describe, test } from "bun:test";
import { backendNames, getBackend } from "../backends.ts";
import { reference } from "./harness.ts";
import { expectKernel, seedOf, uniform } from "./harness.ts";

const SHAPES: [number, number][] = [[1, 1], [1, 3], [3, 7], [5, 33], [7, 65], [4, 127], [65, 768]];

function inputs(rows: number, C: number, tag: string) {
  const x = uniform(rows * C, seedOf(tag, rows, C, "x"), -2, 2);
  for (let i = 0; i < x.length; i++) x[i] += 3; // a mean far from 0
  return { x, w: uniform(C, seedOf(tag, rows, C, "w"), 0.5, 1.5), b: uniform(C, seedOf(tag, rows, C, "b")) };
}

describe.each(backendNames)("layer_norm on %s", (name) => {
  test("layer_norm matches reference (out, mean, rstd)", async () => {
    const backend = await getBackend(name);
    for (const [rows, C] of SHAPES) {
      const { x, w, b } = inputs(rows, C, "layer_norm");
      const p = { rows, C, eps: 1e-5 };
      await expectKernel(backend, "layer_norm", [x, w, b], [rows * C, rows, rows], p, { atol: 1e-5, rtol: 1e-5 });
    }
  });

  test("layer_norm_backward matches reference (dx, dweight, dbias)", async () => {
    const backend = await getBackend(name);
    for (const [rows, C] of SHAPES) {
      const { x, w, b } = inputs(rows, C, "layer_norm_backward");
      const [, mean, rstd] = reference("layer_norm", [x, w, b], [rows * C, rows, rows], { rows, C, eps: 1e-5 });
      const dout = uniform(rows * C, seedOf("layer_norm_backward", rows, C, "dout"));
      const tol = { atol: 2e-5 * Math.sqrt(rows), rtol: 1e-4 };
      await expectKernel(
        backend, "layer_norm_backward", [dout, x, w, Float32Array.from(mean), Float32Array.from(rstd)],
        [rows * C, C, C], { rows, C }, tol,
      );
    }
  });
});
