// forward(ids, { logitsToKeep }) projects only the last positions, with the same values as the full pass.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { createComputeBackend } from "../../src/backend/registry.ts";
import { loadPretrained } from "../../src/models/index.ts";
import { fromArray } from "../../src/tensor/tensor.ts";
import { noGrad } from "../../src/autograd/tape.ts";

const HF = join(import.meta.dir, "../fixtures/hf");

describe("logitsToKeep", async () => {
  const backend = await createComputeBackend("wasm");
  for (const family of ["gpt2", "llama"]) {
    test(`${family}: last k positions equal the full pass's; 0 and k >= T keep all; bad k is an error`, async () => {
      const { model } = await loadPretrained(join(HF, family), { backend });
      const B = 2, T = 7, V = model.config.vocabSize;
      const ids = fromArray(Int32Array.from({ length: B * T }, (_, i) => (i * 37 + 5) % V), [B, T], { dtype: "i32", backend });
      const full = (await noGrad(() => model.forward(ids)).data()) as Float32Array;
      for (const k of [1, 3]) {
        const part = noGrad(() => model.forward(ids, { logitsToKeep: k }));
        expect(part.shape).toEqual([B, k, V]);
        const expected: number[] = [];
        for (let b = 0; b < B; b++) expected.push(...full.subarray((b * T + T - k) * V, (b * T + T) * V));
        expect((await part.data()) as Float32Array).toBeAllClose(expected, { atol: 1e-6, rtol: 0 });
      }
      for (const k of [0, T, T + 4]) expect(noGrad(() => model.forward(ids, { logitsToKeep: k })).shape).toEqual([B, T, V]);
      expect(() => model.forward(ids, { logitsToKeep: -1 })).toThrow("logitsToKeep");
      model.dispose();
    });
  }
});
