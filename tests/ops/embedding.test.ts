// The embedding front end (src/ops/embedding.ts): weight[ids] for i32 ids of any shape, repeated ids
// (their gradient rows add up); ids outside [0, V) are tested in token_ids.test.ts. Forward against plain
// float64 JS; the weight gradient against finite differences; the dtype and rank errors.
import { describe, expect, test } from "bun:test";
import * as k from "../../src/index.ts";
import { backendNames, expectClose, expectGrad, noLeaks, onBackend, rand } from "./helpers.ts";

const V = 7;
const C = 5;

function embeddingRef(ids: number[], w: Float64Array): Float64Array {
  const out = new Float64Array(ids.length * C);
  ids.forEach((id, i) => {
    if (id >= 0 && id < V) for (let c = 0; c < C; c++) out[i * C + c] = w[id * C + c];
  });
  return out;
}

const CASES: [string, number[], number[]][] = [
  ["1-D ids", [3, 0, 6, 2], [4]],
  ["2-D ids with repeats", [1, 4, 1, 1, 6, 0], [2, 3]],
  ["a 0-d id", [3], []],
];

describe.each(backendNames)("embedding on %s", (name) => {
  onBackend(name);

  test.each(CASES)("embedding with %s matches float64", async (_, ids, shape) => {
    await noLeaks(async () => {
      const w = rand([V, C], `emb-w-${_}`);
      const idsT = k.fromArray(Int32Array.from(ids), shape);
      await expectClose(k.embedding(idsT, w.t), [...shape, C], embeddingRef(ids, w.v), { atol: 0, rtol: 0 });
    });
  });

  test.each(CASES)("embedding with %s: weight gradient matches finite differences", async (_, ids, shape) => {
    await noLeaks(async () => {
      const w = rand([V, C], `emb-gw-${_}`).t;
      const idsT = k.fromArray(Int32Array.from(ids), shape);
      const r = await expectGrad((i, ww) => k.embedding(i, ww), [idsT, w], { tol: 1e-3, mutate: ["embedding"] });
      // rows never looked up get exactly zero gradient
      for (let row = 0; row < V; row++) {
        if (ids.includes(row)) continue;
        expect(Array.from(r.analytic[1].subarray(row * C, (row + 1) * C))).toEqual(new Array(C).fill(0));
      }
    });
  });

  test("the gradient of a repeated id is the sum over its uses", async () => {
    await noLeaks(async () => {
      const w = rand([V, C], "emb-repeat").t.requireGrad();
      const ids = k.fromArray(Int32Array.of(2, 2, 2, 5), [4]);
      k.embedding(ids, w).sum().backward();
      const g = await w.grad!.data();
      expect(Array.from(g.subarray(2 * C, 3 * C))).toEqual(new Array(C).fill(3));
      expect(Array.from(g.subarray(5 * C, 6 * C))).toEqual(new Array(C).fill(1));
    });
  });

  test("f32 ids and a non-2-D weight are clear errors", () => {
    k.scope(() => {
      expect(() => k.embedding(k.zeros([3]), k.zeros([V, C]))).toThrow(/\[embedding\] ids must be i32/);
      expect(() => k.embedding(k.arange(3), k.zeros([V * C]))).toThrow(/\[embedding\] weight must be \[V, C\]/);
    });
  });
});
