// Train/eval mode per call (src/tensor/mode.ts): withTraining(false) turns off a Dropout module in
// training mode and a dropout op asked for training, without writing the module's flag;
// withTraining(true) turns an eval-mode Dropout on; the innermost choice wins; two async calls in
// different modes, interleaved, each see their own.
import { describe, expect, test } from "bun:test";
import * as k from "../../src/index.ts";
import { getBackend } from "../backends.ts";

const x = async () => {
  k.useBackend(await getBackend("wasm"));
  return k.keep(k.ones([256]));
};
/** true when dropout changed something (p = 0.5 over 256 ones: all kept has probability 2^-256); frees what f made */
const dropped = (f: () => k.Tensor) => k.asyncScope(async () => (await f().data()).some((v) => v !== 1));

describe("withTraining", () => {
  test("false: a training-mode Dropout and a dropout op asked for training are identity; the flag is untouched", async () => {
    const input = await x();
    const drop = new k.Dropout(0.5);
    expect(drop.training).toBe(true);
    expect(await dropped(() => drop.forward(input))).toBe(true); // it has teeth outside the call
    await k.asyncScope(async () => {
      const [a, b] = k.withTraining(false, () => [drop.forward(input), k.dropout(input, 0.5, true, new k.Rng(1))]);
      expect(a).toBe(input);
      expect(b).toBe(input);
      expect(k.withTraining(false, () => k.isTraining(drop))).toBe(false);
    });
    expect(drop.training).toBe(true);
    expect(k.isTraining(drop)).toBe(true);
    input.dispose();
  });

  test("true turns an eval-mode Dropout on; the innermost choice wins", async () => {
    const input = await x();
    const drop = new k.Dropout(0.5).eval();
    expect(k.scope(() => drop.forward(input))).toBe(input);
    expect(await dropped(() => k.withTraining(true, () => drop.forward(input)))).toBe(true);
    expect(k.withTraining(true, () => k.withTraining(false, () => drop.forward(input)))).toBe(input);
    expect(drop.training).toBe(false);
    input.dispose();
  });

  test("two async calls in different modes, interleaved across awaits, each see their own", async () => {
    const drop = new k.Dropout(0.5);
    const gate = Promise.withResolvers<void>();
    const seen: Record<string, boolean[]> = { evalCall: [], trainCall: [] };
    const call = (name: string, mode: boolean) =>
      k.withTraining(mode, async () => {
        seen[name].push(k.isTraining(drop));
        await gate.promise;
        await new Promise((r) => setTimeout(r, 1));
        seen[name].push(k.isTraining(drop));
      });
    const a = call("evalCall", false);
    const b = call("trainCall", true);
    gate.resolve();
    await Promise.all([a, b]);
    expect(seen).toEqual({ evalCall: [false, false], trainCall: [true, true] });
    expect(k.isTraining(drop)).toBe(true);
  });
});
