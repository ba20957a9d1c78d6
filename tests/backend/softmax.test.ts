// Conformance of softmax and softmax_backward on every backend: odd row widths, large logits
// (max subtraction), rows holding −inf (masked entries).
import { describe, test } from "bun:test";
import { backendNames, getBackend } from "../backends.ts";
import { expectKernel, seedOf, uniform } from "./harness.ts";

const SHAPES: [number, number][] = [[1, 1], [1, 3], [3, 7], [5, 33], [2, 65], [4, 127], [2, 1000], [1, 50257]];

describe.each(backendNames)("softmax on %s", (name) => {
  test("softmax matches reference", async () => {
    const backend = await getBackend(name);
    for (const [rows, cols] of SHAPES) {
      const x = uniform(rows * cols, seedOf("softmax", rows, cols), -10, 10);
      await expectKernel(backend, "softmax", [x], [rows * cols], { rows, cols }, { atol: 1e-7, rtol: 1e-5 });
    }
  });

  test("softmax is stable for large logits and masked (−inf) entries", async () => {
    const backend = await getBackend(name);
    const x = Float32Array.of(1000, 999, -Infinity, 998, -Infinity, -Infinity, 0, 1, 2, 3, 4);
    await expectKernel(backend, "softmax", [x], [11], { rows: 1, cols: 11 }, { atol: 1e-7, rtol: 1e-5 });
  });

  test("softmax_backward matches reference", async () => {
    const backend = await getBackend(name);
    for (const [rows, cols] of SHAPES) {
      const out = uniform(rows * cols, seedOf("softmax_backward", rows, cols, "out"), 0, 1);
      const dout = uniform(rows * cols, seedOf("softmax_backward", rows, cols, "dout"));
      await expectKernel(backend, "softmax_backward", [out, dout], [rows * cols], { rows, cols }, { atol: 1e-5, rtol: 1e-5 });
    }
  });
});
