// The loss front end (src/ops/loss.ts): crossEntropy of logits [..., V] against i32 targets, as
// torch.nn.functional.cross_entropy: reductions mean (over the targets that are not ignored), sum
// and none; ignoreIndex (default −100, or a class id); any other target outside [0, V) is an error.
// Forward against plain float64 JS; logits gradients against finite differences.
import { describe, expect, test } from "bun:test";
import * as k from "../../src/index.ts";
import { backendNames, expectClose, expectGrad, noLeaks, onBackend, rand } from "./helpers.ts";

/** Per-position losses (0 where ignored) and how many positions count. */
function crossEntropyRef(logits: Float64Array, V: number, targets: number[], ignoreIndex: number): { losses: Float64Array; count: number } {
  const losses = new Float64Array(targets.length);
  let count = 0;
  targets.forEach((t, i) => {
    if (t === ignoreIndex || t < 0 || t >= V) return;
    const row = Array.from(logits.subarray(i * V, (i + 1) * V));
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    losses[i] = lse - row[t];
    count++;
  });
  return { losses, count };
}

// name, logits shape, targets, ignoreIndex (undefined: the default −100)
const CASES: [string, number[], number[], number | undefined][] = [
  ["[N, V], every target counted", [5, 7], [0, 6, 3, 3, 1], undefined],
  ["[N, V] with targets at the default ignoreIndex −100", [6, 7], [2, -100, 5, -100, -100, 0], undefined],
  ["[B, T, V] with ignoreIndex 0 (a class id)", [2, 3, 5], [0, 1, 4, 0, 2, 0], 0],
];

const REDUCTIONS = ["mean", "sum", "none"] as const;

describe.each(backendNames)("loss on %s", (name) => {
  onBackend(name);

  for (const reduction of REDUCTIONS) {
    describe(`cross_entropy, reduction ${reduction}`, () => {
      test.each(CASES)(`crossEntropy ${reduction} of %s matches float64`, async (_, shape, targets, ignoreIndex) => {
        await noLeaks(async () => {
          const V = shape[shape.length - 1];
          const logits = rand(shape, `ce-${_}`, -3, 3);
          const t = k.fromArray(Int32Array.from(targets), shape.slice(0, -1));
          const { losses, count } = crossEntropyRef(logits.v, V, targets, ignoreIndex ?? -100);
          const total = losses.reduce((s, v) => s + v, 0);
          const out = k.crossEntropy(logits.t, t, { ignoreIndex, reduction });
          if (reduction === "none") await expectClose(out, shape.slice(0, -1), losses);
          else await expectClose(out, [], [reduction === "sum" ? total : total / count]);
        });
      });

      test.each(CASES)(`crossEntropy ${reduction} of %s: logits gradient matches finite differences`, async (_, shape, targets, ignoreIndex) => {
        await noLeaks(async () => {
          const logits = rand(shape, `ce-grad-${_}`, -2, 2).t;
          const t = k.fromArray(Int32Array.from(targets), shape.slice(0, -1));
          // scaled so every logit's gradient is well above the tolerance
          const r = await expectGrad((x, y) => k.crossEntropy(x, y, { ignoreIndex, reduction }).mul(4), [logits, t], { tol: 2e-3, mutate: ["cross_entropy"] });
          // rows of ignored targets get exactly zero gradient
          const V = shape[shape.length - 1];
          targets.forEach((tg, i) => {
            if (tg === (ignoreIndex ?? -100) || tg < 0 || tg >= V) {
              expect(Array.from(r.analytic[0].subarray(i * V, (i + 1) * V))).toEqual(new Array(V).fill(0));
            }
          });
        });
      });
    });
  }

  test("mean over ignored targets divides by the count of targets that are counted, not by N", async () => {
    await noLeaks(async () => {
      // equal logits: every counted position costs log V
      const logits = k.zeros([4, 8]);
      const targets = k.fromArray(Int32Array.of(1, -100, -100, 3), [4]);
      expect(await k.crossEntropy(logits, targets).item()).toBeCloseTo(Math.log(8), 5);
      expect(await k.crossEntropy(logits, targets, { reduction: "sum" }).item()).toBeCloseTo(2 * Math.log(8), 5);
    });
  });

  test("mismatched targets and f32 targets are clear errors", () => {
    k.scope(() => {
      const logits = k.zeros([3, 5]);
      expect(() => k.crossEntropy(logits, k.arange(4))).toThrow(/\[cross_entropy\] targets .*i32\[4\] do not match logits .*f32\[3, 5\]/);
      expect(() => k.crossEntropy(logits, k.zeros([3]))).toThrow(/\[cross_entropy\] targets must be i32/);
    });
  });
});
