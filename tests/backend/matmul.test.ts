// Conformance of matmul on every backend: all four transpose combinations, bias on and off, batched
// with per-batch strides and with a broadcast (stride 0) operand, odd M/N/K (edge tiles), and the
// GPT shapes of a training step. Oracle: tests/reference.ts matmul (float64, i-j-k).
import { describe, test } from "bun:test";
import { backendNames, getBackend } from "../backends.ts";
import { expectKernel, seedOf, uniform } from "./harness.ts";

// [batch, M, N, K]
const SHAPES: [number, number, number, number][] = [
  [1, 1, 1, 1], [1, 3, 7, 5], [1, 7, 33, 65], [2, 33, 17, 9], [1, 65, 127, 33], [3, 13, 1, 31], [1, 1, 65, 127],
  [1, 127, 64, 128], [1, 768, 128, 64], [2, 64, 64, 32],
];

describe.each(backendNames)("matmul on %s", (name) => {
  for (const [transA, transB] of [[0, 0], [0, 1], [1, 0], [1, 1]]) {
    test(`matmul transA=${transA} transB=${transB} with and without bias matches reference`, async () => {
      const backend = await getBackend(name);
      for (const [batch, M, N, K] of SHAPES) {
        for (const hasBias of [0, 1]) {
          const s = (t: string) => seedOf("matmul", transA, transB, batch, M, N, K, hasBias, t);
          const a = uniform(batch * M * K, s("a")), b = uniform(batch * K * N, s("b"));
          const bias = hasBias ? uniform(N, s("bias")) : null;
          const p = { batch, M, N, K, transA, transB, strideA: M * K, strideB: K * N, hasBias };
          await expectKernel(backend, "matmul", [a, b, bias], [batch * M * N], p, { atol: 2e-6 * Math.sqrt(K), rtol: 1e-5 });
        }
      }
    });
  }

  test("matmul broadcasts an operand over the batch with stride 0", async () => {
    const backend = await getBackend(name);
    for (const [batch, M, N, K] of [[3, 5, 7, 9], [4, 33, 65, 17]] as const) {
      for (const [transA, transB] of [[0, 0], [1, 1]]) {
        const s = (t: string) => seedOf("matmul-bcast", batch, M, N, K, transA, transB, t);
        const a = uniform(batch * M * K, s("a")), w = uniform(K * N, s("w")), bias = uniform(N, s("bias"));
        const p1 = { batch, M, N, K, transA, transB, strideA: M * K, strideB: 0, hasBias: 1 };
        await expectKernel(backend, "matmul", [a, w, bias], [batch * M * N], p1, { atol: 2e-6 * Math.sqrt(K), rtol: 1e-5 });
        const x = uniform(M * K, s("x")), bs = uniform(batch * K * N, s("bs"));
        const p2 = { batch, M, N, K, transA, transB, strideA: 0, strideB: K * N, hasBias: 0 };
        await expectKernel(backend, "matmul", [x, bs, null], [batch * M * N], p2, { atol: 2e-6 * Math.sqrt(K), rtol: 1e-5 });
      }
    }
  });
});
