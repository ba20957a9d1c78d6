// Out-of-range integer ids (src/ops/token_ids.ts): an embedding id or a cross-entropy target outside
// [0, V) is a RangeError naming the id, its position and V, as PyTorch's IndexError, on every backend,
// including through a model's forward; nothing leaks when it throws. The kernels' zero-row guard
// stays for ids the host cannot see (embeddingRows).
import { describe, expect, test } from "bun:test";
import * as k from "../../src/index.ts";
import { embeddingRows } from "../../src/ops/embedding.ts";
import { backendNames, expectClose, noLeaks, onBackend, rand } from "./helpers.ts";

const V = 7;
const C = 3;

describe.each(backendNames)("token ids on %s", (name) => {
  onBackend(name);

  test.each([7, 100, 2 ** 30, -1, -(2 ** 31)])("embedding id %p is an error naming it, its position and V", async (bad) => {
    await noLeaks(() => {
      const w = rand([V, C], "ids-w").t;
      const ids = k.fromArray(Int32Array.of(1, 2, 3, bad, 0, bad), [2, 3]);
      let error: unknown;
      try {
        k.embedding(ids, w);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(RangeError);
      expect((error as Error).message).toBe(
        `[embedding] token id ${bad} at position [1, 0] is out of range for a vocabulary of 7 (valid: 0..6)`,
      );
    });
  });

  test("ids seen through a reshape, and ids made by full(), are checked too", async () => {
    await noLeaks(() => {
      const w = rand([V, C], "ids-w2").t;
      expect(() => k.embedding(k.fromArray(Int32Array.of(0, 1, 9, 2), [4]).reshape(2, 2), w)).toThrow("token id 9 at position [1, 0]");
      expect(() => k.embedding(k.full([2], V, { dtype: "i32" }), w)).toThrow("token id 7 at position [0]");
      expect(() => k.embedding(k.full([2], V - 1, { dtype: "i32" }), w)).not.toThrow();
    });
  });

  test("the kernel's guard: embeddingRows gives a zero row for an id outside [0, V)", async () => {
    await noLeaks(async () => {
      const w = rand([V, C], "ids-w3");
      const out = embeddingRows(k.fromArray(Int32Array.of(2, 7, -1), [3]), w.t);
      const want = [...w.v.subarray(2 * C, 3 * C), 0, 0, 0, 0, 0, 0];
      await expectClose(out, [3, C], want, { atol: 0, rtol: 0 });
    });
  });

  test("a cross-entropy target outside [0, V) other than ignoreIndex is an error", async () => {
    await noLeaks(async () => {
      const logits = rand([4, 6], "ids-ce").t;
      const t = (...v: number[]) => k.fromArray(Int32Array.from(v), [v.length]);
      expect(() => k.crossEntropy(logits, t(1, 9, 5, -3))).toThrow(
        "[cross_entropy] target 9 at position [1] is out of range for 6 classes (valid: 0..5 or -100 (ignoreIndex))",
      );
      expect(() => k.crossEntropy(logits, t(1, -100, 5, -3))).toThrow("target -3 at position [3]");
      expect(() => k.crossEntropy(logits, t(1, -100, 5, 0), { ignoreIndex: 0 })).toThrow("target -100 at position [1]");
      const ok = k.crossEntropy(logits, t(1, -100, 5, 0));
      expect(Number.isFinite(await ok.item())).toBe(true);
    });
  });

  test("GPT.forward with an id equal to the vocabulary size names it (no silent logits)", async () => {
    await noLeaks(() => {
      const model = new k.GPT({ vocabSize: 11, blockSize: 8, nLayer: 1, nHead: 1, nEmbd: 4 });
      expect(() => k.noGrad(() => model.forward(k.fromArray(Int32Array.of(3, 4, 11), [1, 3])))).toThrow(
        "token id 11 at position [0, 2] is out of range for a vocabulary of 11",
      );
      k.noGrad(() => model.forward(k.fromArray(Int32Array.of(3, 4, 10), [1, 3])));
      model.dispose();
    });
  });
});
