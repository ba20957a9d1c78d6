// chooseToken's OpenAI knobs against hand-worked values: presence and frequency penalties over the
// generated counts (OpenAI's formula), logit_bias, and logprobOf (log-softmax, top-k best first).

import { describe, expect, test } from "bun:test";
import { chooseToken, logprobOf, type TokenChoiceParams } from "../../src/serve/token_choice.ts";
import { GREEDY } from "../../src/models/sampling.ts";
import { Rng } from "../../src/tensor/random.ts";

const params = (p: Partial<TokenChoiceParams> = {}): TokenChoiceParams => ({
  sampling: GREEDY, presencePenalty: 0, frequencyPenalty: 0, logitBias: new Map(), logprobs: null, rng: new Rng(0), ...p,
});

describe("token_choice", () => {
  test("frequency penalty subtracts count·α_f, presence subtracts α_p once", () => {
    const logits = new Float32Array([3, 2.5, 1]);
    const counts = new Map([[0, 2]]);
    expect(chooseToken(logits, params(), [], counts).token).toBe(0);
    expect(chooseToken(logits, params({ frequencyPenalty: 0.2 }), [], counts).token).toBe(0); // 3 − 0.4 = 2.6 > 2.5
    expect(chooseToken(logits, params({ frequencyPenalty: 0.3 }), [], counts).token).toBe(1); // 3 − 0.6 = 2.4 < 2.5
    expect(chooseToken(logits, params({ presencePenalty: 0.4 }), [], counts).token).toBe(0); // 2.6
    expect(chooseToken(logits, params({ presencePenalty: 0.6 }), [], counts).token).toBe(1); // 2.4
    expect(chooseToken(logits, params({ presencePenalty: -1 }), [], new Map([[2, 1]])).token).toBe(0); // 1 + 1 = 2 < 3
    expect(logits[0]).toBe(3); // the caller's logits are not touched
  });

  test("logit_bias moves a token in or out", () => {
    const logits = new Float32Array([3, 2.5, 1]);
    expect(chooseToken(logits, params({ logitBias: new Map([[2, 2.5]]) }), [], new Map()).token).toBe(2);
    expect(chooseToken(logits, params({ logitBias: new Map([[0, -100]]) }), [], new Map()).token).toBe(1);
  });

  test("logprobOf is log-softmax of the raw logits; top-k best first; reported by chooseToken", () => {
    const logits = [0.5, -1, 2, 2, 0];
    const lse = Math.log(logits.reduce((s, x) => s + Math.exp(x), 0));
    const lp = logprobOf(logits, 4, 3);
    expect(lp.logprob).toBeCloseTo(0 - lse, 12);
    expect(lp.top.map((t) => t.token)).toEqual([2, 3, 0]);
    expect(lp.top.map((t) => t.logprob)).toEqual([2 - lse, 2 - lse, 0.5 - lse]);
    expect(logprobOf(logits, 1, 0).top).toEqual([]);
    expect(logprobOf(logits, 1, 10).top.length).toBe(5);
    const c = chooseToken(new Float32Array(logits), params({ logprobs: 1, presencePenalty: 2 }), [], new Map([[2, 1]]));
    expect(c.token).toBe(3); // the penalty moves the choice...
    expect(c.logprob!.top[0].token).toBe(2); // ...not the reported (raw) distribution
  });
});
