// The seeded host RNG (src/tensor/random.ts): the same seed gives the same stream, reseed and
// getState/setState resume it exactly (checkpoints rely on this), int() stays in range, and an
// invalid state is refused.
import { describe, expect, test } from "bun:test";
import { Rng } from "../../src/tensor/random.ts";

const draw = (r: Rng, n: number) => Array.from({ length: n }, () => r.next());

describe("Rng", () => {
  test("the same seed gives the same stream; another seed another", () => {
    expect(draw(new Rng(1), 20)).toEqual(draw(new Rng(1), 20));
    expect(draw(new Rng(1), 20)).not.toEqual(draw(new Rng(2), 20));
    const r = new Rng(5);
    const first = draw(r, 10);
    r.reseed(5);
    expect(draw(r, 10)).toEqual(first);
  });

  test("getState/setState resumes exactly, including a pending Box–Muller normal", () => {
    const r = new Rng(77);
    r.normal(); // leaves the paired normal pending
    const state = r.getState();
    expect(state.spare).not.toBeNull();
    const ahead = [r.normal(), r.next(), r.normal(), r.nextU32()];
    const s = new Rng(0);
    s.setState(JSON.parse(JSON.stringify(state)));
    expect([s.normal(), s.next(), s.normal(), s.nextU32()]).toEqual(ahead);
    expect(() => s.setState({ s: [1, 2], spare: null })).toThrow(/\[rng\] invalid state/);
  });

  test("next() is in [0, 1), int(n) in [0, n) and hits every value", () => {
    const r = new Rng(3);
    const seen = new Set<number>();
    for (let i = 0; i < 5000; i++) {
      const u = r.next();
      expect(u >= 0 && u < 1).toBe(true);
      const v = r.int(7);
      expect(Number.isInteger(v) && v >= 0 && v < 7).toBe(true);
      seen.add(v);
    }
    expect(seen.size).toBe(7);
  });
});
