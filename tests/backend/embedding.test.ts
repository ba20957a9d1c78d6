// Conformance of embedding (gather) and embedding_backward (scatter-add, "+=") on every backend,
// with repeated ids and ids outside [0, V) (zero rows forward, skipped backward).
import { describe, test } from "bun:test";
import { backendNames, getBackend } from "../backends.ts";
import { expectKernel, ints, seedOf, uniform } from "./harness.ts";

const SHAPES: [number, number, number][] = [[1, 1, 1], [7, 5, 3], [33, 65, 7], [64, 65, 32], [127, 10, 33]];

describe.each(backendNames)("embedding on %s", (name) => {
  test("embedding matches reference, out-of-range ids give zero rows", async () => {
    const backend = await getBackend(name);
    for (const [n, V, C] of SHAPES) {
      const ids = ints(n, seedOf("embedding", n, V, C), -2, V + 2);
      const weight = uniform(V * C, seedOf("embedding", n, V, C, "w"));
      await expectKernel(backend, "embedding", [ids, weight], [n * C], { n, V, C }, { atol: 0, rtol: 0 });
    }
  });

  test("embedding_backward adds repeated rows and skips out-of-range ids", async () => {
    const backend = await getBackend(name);
    for (const [n, V, C] of SHAPES) {
      const ids = ints(n, seedOf("embedding_backward", n, V, C), -2, V + 2);
      const dout = uniform(n * C, seedOf("embedding_backward", n, V, C, "dout"));
      const dw0 = uniform(V * C, seedOf("embedding_backward", n, V, C, "dw"));
      await expectKernel(backend, "embedding_backward", [ids, dout], [dw0], { n, V, C }, { atol: 1e-6, rtol: 1e-6 });
      await expectKernel(backend, "embedding_backward", [ids, dout], [new Float32Array(V * C)], { n, V, C }, { atol: 1e-6, rtol: 1e-6 });
    }
  });
});
