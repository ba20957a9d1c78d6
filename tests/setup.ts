// Test preload (bunfig.toml [test] preload): custom matchers shared by every test file.
// toBeAllClose(expected, { atol, rtol }) checks |received − expected| <= atol + rtol·|expected|
// elementwise (NaN matches NaN, ±inf must match exactly), as numpy.allclose / torch.allclose do,
// and on failure names the worst element, the max abs error and how many elements are off.
import { expect } from "bun:test";

export interface CloseOptions {
  atol?: number;
  rtol?: number;
}

declare module "bun:test" {
  interface Matchers<T> {
    toBeAllClose(expected: ArrayLike<number>, options?: CloseOptions): void;
  }
  interface AsymmetricMatchers {
    toBeAllClose(expected: ArrayLike<number>, options?: CloseOptions): void;
  }
}

expect.extend({
  toBeAllClose(received: unknown, expected: ArrayLike<number>, options: CloseOptions = {}) {
    const atol = options.atol ?? 1e-5;
    const rtol = options.rtol ?? 1e-5;
    const got = received as ArrayLike<number>;
    if (got === null || typeof got !== "object" || typeof got.length !== "number") {
      return { pass: false, message: () => `toBeAllClose: received ${String(received)}, not an array` };
    }
    if (got.length !== expected.length) {
      return { pass: false, message: () => `toBeAllClose: length ${got.length} != expected length ${expected.length}` };
    }
    let bad = 0, worst = -1, worstExcess = -Infinity, maxAbs = 0, maxAbsAt = -1;
    for (let i = 0; i < got.length; i++) {
      const a = got[i], e = expected[i];
      let ok: boolean, excess: number;
      if (Number.isNaN(e) || Number.isNaN(a)) {
        ok = Number.isNaN(e) && Number.isNaN(a);
        excess = ok ? 0 : Infinity;
      } else if (!Number.isFinite(e) || !Number.isFinite(a)) {
        ok = a === e;
        excess = ok ? 0 : Infinity;
      } else {
        const err = Math.abs(a - e);
        if (err > maxAbs) [maxAbs, maxAbsAt] = [err, i];
        excess = err - (atol + rtol * Math.abs(e));
        ok = excess <= 0;
      }
      if (!ok) bad++;
      if (excess > worstExcess) [worstExcess, worst] = [excess, i];
    }
    const pass = bad === 0;
    return {
      pass,
      message: () =>
        pass
          ? `expected arrays to differ beyond atol=${atol}, rtol=${rtol}, but all ${got.length} elements are close ` +
            `(max abs err ${maxAbs.toExponential(3)})`
          : `${bad} of ${got.length} elements differ beyond atol=${atol}, rtol=${rtol}; ` +
            `worst at [${worst}]: got ${got[worst]}, expected ${expected[worst]}; ` +
            `max abs err ${maxAbs.toExponential(3)} at [${maxAbsAt}]`,
    };
  },
});
