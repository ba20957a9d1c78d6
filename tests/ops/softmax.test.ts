// The softmax front end (src/ops/softmax.ts): the last axis (one kernel) and other axes (moved to
// the end and back), large logits (max subtraction). Forward against plain float64 JS; gradients
// against finite differences, with the rule sabotaged in a second run.
import { describe, expect, test } from "bun:test";
import * as k from "../../src/index.ts";
import { backendNames, expectClose, expectGrad, hostLanes, noLeaks, onBackend, rand } from "./helpers.ts";

function softmaxLane(lane: number[]): number[] {
  const m = Math.max(...lane);
  const e = lane.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

const CASES: [string, number[], number][] = [
  ["last axis of [4, 9]", [4, 9], -1],
  ["last axis of [2, 3, 5], given as 2", [2, 3, 5], 2],
  ["axis 0 of [3, 4]", [3, 4], 0],
  ["middle axis of [2, 5, 3]", [2, 5, 3], 1],
  ["axis -3 of [3, 2, 4]", [3, 2, 4], -3],
  ["a single column", [5, 1], -1],
];

describe.each(backendNames)("softmax on %s", (name) => {
  onBackend(name);

  test.each(CASES)("softmax over the %s matches float64", async (_, shape, axis) => {
    await noLeaks(async () => {
      const x = rand(shape, `softmax-${_}`, -3, 3);
      const a = axis < 0 ? axis + shape.length : axis;
      const want = hostLanes(x.v, shape, a, softmaxLane);
      await expectClose(k.softmax(x.t, axis), shape, want, { atol: 1e-6, rtol: 1e-5 });
      await expectClose(x.t.softmax(axis), shape, want, { atol: 1e-6, rtol: 1e-5 });
    });
  });

  // (a single column's softmax is constant 1: its gradient is zero, nothing to compare)
  test.each(CASES.slice(0, -1))("softmax over the %s: gradient matches finite differences", async (_, shape, axis) => {
    await noLeaks(async () => {
      await expectGrad((t) => k.softmax(t, axis), [rand(shape, `softmax-grad-${_}`, -2, 2).t], { tol: 2e-3, mutate: ["softmax"] });
    });
  });

  test("softmax is stable for large logits", async () => {
    await noLeaks(async () => {
      const v = [1000, 999, 998, -1000, 0, 1, 2, 3];
      await expectClose(k.softmax(k.tensor([v]), -1), [1, 8], softmaxLane(v), { atol: 1e-7, rtol: 1e-5 });
    });
  });

  test("an axis out of range is a clear error", () => {
    k.scope(() => {
      expect(() => k.softmax(k.zeros([2, 3]), 2)).toThrow(/\[softmax\] axis 2 is out of range/);
    });
  });
});
