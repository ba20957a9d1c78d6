// Conformance of rms_norm and rms_norm_backward on every backend, odd widths, dweight summed over rows.
import { describe, test } from "bun:test";
import { backendNames, getBackend } from "../backends.ts";
import { expectKernel, reference, seedOf, uniform } from "./harness.ts";

const SHAPES: [number, number][] = [[1, 1], [1, 3], [3, 7], [5, 33], [7, 65], [4, 127], [65, 768]];

describe.each(backendNames)("rms_norm on %s", (name) => {
  test("rms_norm matches reference (out, rstd)", async () => {
    const backend = await getBackend(name);
    for (const [rows, C] of SHAPES) {
      const x = uniform(rows * C, seedOf("rms_norm", rows, C, "x"), -2, 2);
      const w = uniform(C, seedOf("rms_norm", rows, C, "w"), 0.5, 1.5);
      await expectKernel(backend, "rms_norm", [x, w], [rows * C, rows], { rows, C, eps: 1e-6 }, { atol: 1e-5, rtol: 1e-5 });
    }
  });

  test("rms_norm_backward matches reference (dx, dweight)", async () => {
    const backend = await getBackend(name);
    for (const [rows, C] of SHAPES) {
      const x = uniform(rows * C, seedOf("rms_norm_backward", rows, C, "x"), -2, 2);
      const w = uniform(C, seedOf("rms_norm_backward", rows, C, "w"), 0.5, 1.5);
      const [, rstd] = reference("rms_norm", [x, w], [rows * C, rows], { rows, C, eps: 1e-6 });
      const dout = uniform(rows * C, seedOf("rms_norm_backward", rows, C, "dout"));
      const tol = { atol: 2e-5 * Math.sqrt(rows), rtol: 1e-4 };
      await expectKernel(backend, "rms_norm_backward", [dout, x, w, Float32Array.from(rstd)], [rows * C, C], { rows, C }, tol);
    }
  });
});
