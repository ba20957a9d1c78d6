// The token-choice functions of src/models/sampling.ts against distributions worked out by hand
// with HF transformers' rules (repetition penalty, then temperature, top-k, top-p), and the seeded
// draw against its target frequencies. Pure host code: no backend.

import { describe, expect, test } from "bun:test";
import { Rng } from "../../src/tensor/random.ts";
import {
  applyRepetitionPenalty, applyTopK, applyTopP, argmax, GREEDY, pickToken, processLogits, sampleIndex, softmax, tokenProbs,
  type SamplingParams,
} from "../../src/models/sampling.ts";

const SAMPLE: SamplingParams = { temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1 };
const ref = (xs: number[]) => {
  const m = Math.max(...xs);
  const e = xs.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

describe("sampling", () => {
  test("greedy is the argmax (first among ties); probs are one-hot", () => {
    expect(pickToken([0.1, 2, 0.3, 2], GREEDY, [], new Rng(1))).toBe(1);
    expect(Array.from(tokenProbs([0.1, 2, 0.3], GREEDY, []))).toEqual([0, 1, 0]);
    expect(argmax([-Infinity, -1, -1])).toBe(1);
  });

  test("temperature divides the logits: softmax(l / t)", () => {
    const p = tokenProbs([1, 2, 3], { ...SAMPLE, temperature: 0.5 }, []);
    expect(p).toBeAllClose(ref([2, 4, 6]), { atol: 1e-15, rtol: 0 });
  });

  test("top-k keeps the k largest, ties with the k-th included", () => {
    expect(tokenProbs([1, 3, 2, 0], { ...SAMPLE, topK: 2 }, [])).toBeAllClose([0, ...ref([3, 2]), 0], { atol: 1e-15, rtol: 0 });
    const s = Float64Array.from([3, 2, 2, 0]);
    applyTopK(s, 2);
    expect(Array.from(s)).toEqual([3, 2, 2, -Infinity]);
    const all = Float64Array.from([1, 2]);
    applyTopK(all, 5); // k >= V: no-op
    expect(Array.from(all)).toEqual([1, 2]);
  });

  test("top-p removes the least likely tokens whose cumulative probability <= 1 - p (HF rule)", () => {
    // probs 0.5, 0.3, 0.15, 0.05; p = 0.75: ascending cumsums 0.05, 0.2, 0.5, 1 -> remove those <= 0.25
    const logits = [0.5, 0.3, 0.15, 0.05].map(Math.log);
    expect(tokenProbs(logits, { ...SAMPLE, topP: 0.75 }, [])).toBeAllClose([0.625, 0.375, 0, 0], { atol: 1e-12, rtol: 0 });
    // p = 0.9: remove cumsums <= 0.1 -> only the 0.05 token goes
    expect(tokenProbs(logits, { ...SAMPLE, topP: 0.9 }, [])).toBeAllClose([0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0], { atol: 1e-12, rtol: 0 });
    // a tiny p keeps the most likely token only
    const s = Float64Array.from(logits);
    applyTopP(s, 0.01);
    expect(Array.from(s).map((v) => v > -Infinity)).toEqual([true, false, false, false]);
  });

  test("repetition penalty: positive logits divided, negative multiplied, each seen id once", () => {
    const s = Float64Array.from([2, -1, 0.5, 3]);
    applyRepetitionPenalty(s, [0, 1, 1, 0, 99], 2); // 99 is outside the vocabulary: ignored
    expect(Array.from(s)).toEqual([1, -2, 0.5, 3]);
    // it applies to greedy decoding too, and can change the choice
    expect(pickToken([2, 1.5], { ...GREEDY, repetitionPenalty: 2 }, [0], new Rng(1))).toBe(1);
  });

  test("penalty, temperature, top-k and top-p compose in HF's order", () => {
    // logits [4, 2, 1, 0.5, -1], previous [0, 4], penalty 2 -> [2, 2, 1, 0.5, -2]
    // temperature 0.5 -> [4, 4, 2, 1, -4]; top-k 3 -> [4, 4, 2, -inf, -inf]
    // softmax -> e^0 e^0 e^-2 over (2 + e^-2): 0.4683, 0.4683, 0.0634; top-p 0.9: ascending cumsum
    // 0.0634 <= 0.1 -> removed, then 0.5317 > 0.1 stops -> [0.5, 0.5, 0, 0, 0]
    const params = { temperature: 0.5, topK: 3, topP: 0.9, repetitionPenalty: 2 };
    const scores = processLogits([4, 2, 1, 0.5, -1], params, [0, 4]);
    expect(Array.from(scores)).toEqual([4, 4, -Infinity, -Infinity, -Infinity]);
    expect(tokenProbs([4, 2, 1, 0.5, -1], params, [0, 4])).toBeAllClose([0.5, 0.5, 0, 0, 0], { atol: 1e-15, rtol: 0 });
  });

  test("top-k 1 equals greedy whatever the seed", () => {
    const rng = new Rng(7);
    for (let trial = 0; trial < 20; trial++) {
      const logits = Array.from({ length: 97 }, () => rng.normal());
      expect(pickToken(logits, { ...SAMPLE, topK: 1 }, [], new Rng(trial))).toBe(argmax(logits));
    }
  });

  test("seeded draws follow the distribution and repeat with the seed", () => {
    const probs = Float64Array.from([0.1, 0.2, 0.7, 0]);
    const rng = new Rng(42);
    const counts = [0, 0, 0, 0];
    const N = 20000;
    for (let i = 0; i < N; i++) counts[sampleIndex(probs, rng)]++;
    expect(counts.map((c) => c / N)).toBeAllClose([0.1, 0.2, 0.7, 0], { atol: 0.015, rtol: 0 });
    const draw = (seed: number) => {
      const r = new Rng(seed);
      return Array.from({ length: 50 }, () => pickToken([0.3, 1, 0.2, 0.9, 0.5], SAMPLE, [], r));
    };
    expect(draw(1)).toEqual(draw(1));
    expect(draw(1)).not.toEqual(draw(2));
  });

  test("softmax is float64 and exact on -inf; bad parameters and all -inf rows throw", () => {
    expect(softmax([0, -Infinity, Math.log(3)])).toBeAllClose([0.25, 0, 0.75], { atol: 1e-15, rtol: 0 });
    expect(() => softmax([-Infinity, -Infinity])).toThrow(/nothing to sample/);
    expect(() => pickToken([1, 2], { ...SAMPLE, topP: 0 }, [], new Rng(1))).toThrow(/topP/);
    expect(() => pickToken([1, 2], { ...SAMPLE, temperature: -1 }, [], new Rng(1))).toThrow(/temperature/);
    expect(() => pickToken([1, 2], { ...SAMPLE, topK: 1.5 }, [], new Rng(1))).toThrow(/topK/);
    expect(() => pickToken([1, 2], { ...SAMPLE, repetitionPenalty: 0 }, [], new Rng(1))).toThrow(/repetitionPenalty/);
  });
});
