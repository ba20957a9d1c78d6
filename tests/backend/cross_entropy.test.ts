// Conformance of cross_entropy and cross_entropy_backward on every backend: odd vocabularies,
// ignoreIndex rows, targets outside [0, V), large logits, a GPT-2-sized vocabulary.
import { describe, test } from "bun:test";
import { backendNames, getBackend } from "../backends.ts";
import { expectKernel, ints, reference, seedOf, uniform } from "./harness.ts";

const SHAPES: [number, number][] = [[1, 1], [1, 3], [3, 7], [5, 33], [7, 65], [4, 127], [2, 50257]];

function targets(N: number, V: number, tag: string): Int32Array {
  const t = ints(N, seedOf(tag, N, V), 0, V);
  if (N >= 3) {
    t[1] = -100; // ignoreIndex
    t[2] = V; // out of range
  }
  if (N >= 5) t[4] = -1;
  return t;
}

describe.each(backendNames)("cross_entropy on %s", (name) => {
  test("cross_entropy matches reference (loss, lse); ignored rows have loss 0", async () => {
    const backend = await getBackend(name);
    for (const [N, V] of SHAPES) {
      const logits = uniform(N * V, seedOf("cross_entropy", N, V), -20, 20);
      const p = { N, V, ignoreIndex: -100 };
      await expectKernel(backend, "cross_entropy", [logits, targets(N, V, "ce")], [N, N], p, { atol: 2e-5, rtol: 1e-6 });
    }
  });

  test("cross_entropy_backward matches reference; ignored rows are zero", async () => {
    const backend = await getBackend(name);
    for (const [N, V] of SHAPES) {
      const logits = uniform(N * V, seedOf("cross_entropy_backward", N, V), -20, 20);
      const t = targets(N, V, "ce_bw");
      const p = { N, V, ignoreIndex: -100 };
      const [, lse] = reference("cross_entropy", [logits, t], [N, N], p);
      const dloss = uniform(N, seedOf("cross_entropy_backward", N, V, "dloss"), 0.1, 2);
      await expectKernel(backend, "cross_entropy_backward", [logits, t, Float32Array.from(lse), dloss], [N * V], p, { atol: 1e-6, rtol: 1e-4 });
    }
  });
});
