// TPE is real: on standard test functions, at equal trials, TPE's best value beats random search's,
// averaged over 20 seeds (Branin; a 5-D quadratic with one log-scale parameter and an integer).

import { expect, test } from "bun:test";
import { createStudy, type Trial } from "../../src/jobs/study.ts";
import { tpeWeights, tpeGamma } from "../../src/jobs/tpe.ts";

const branin = (t: Trial) => {
  const x = t.suggestFloat("x", -5, 10);
  const y = t.suggestFloat("y", 0, 15);
  return (y - (5.1 / (4 * Math.PI ** 2)) * x * x + (5 / Math.PI) * x - 6) ** 2 + 10 * (1 - 1 / (8 * Math.PI)) * Math.cos(x) + 10;
};

const quadratic = (t: Trial) => {
  const lr = t.suggestFloat("lr", 1e-6, 1e-1, { log: true });
  const layers = t.suggestInt("layers", 1, 12);
  let f = (Math.log10(lr) - Math.log10(3e-4)) ** 2 + ((layers - 7) / 3) ** 2;
  for (let i = 0; i < 3; i++) f += (t.suggestFloat(`x${i}`, -5, 5) - (i - 1)) ** 2;
  return f;
};

async function meanBest(sampler: "tpe" | "random", objective: (t: Trial) => number, nTrials: number): Promise<number> {
  let sum = 0;
  for (let seed = 0; seed < 20; seed++) {
    const study = await createStudy({ sampler, seed });
    await study.optimize(objective, { nTrials });
    sum += study.bestValue!;
    await study.close();
  }
  return sum / 20;
}

test.each([
  ["Branin (minimum 0.398)", branin, 40],
  ["5-D quadratic with a log-scale learning rate (minimum 0)", quadratic, 50],
] as const)("TPE beats random search on %s, mean best of 20 seeds", async (name, objective, nTrials) => {
  const tpe = await meanBest("tpe", objective, nTrials);
  const random = await meanBest("random", objective, nTrials);
  console.log(`[tpe] ${name}, ${nTrials} trials: TPE ${tpe.toFixed(3)}, random ${random.toFixed(3)} (mean best of 20 seeds)`);
  expect(tpe).toBeLessThan(random);
}, 120_000);

test("Optuna's gamma and default weights", () => {
  expect([1, 10, 11, 100, 300].map(tpeGamma)).toEqual([1, 1, 2, 10, 25]);
  expect(tpeWeights(3)).toEqual([1, 1, 1]);
  const w = tpeWeights(30); // numpy: concatenate(linspace(1/30, 1, 5), ones(25))
  expect(w).toHaveLength(30);
  expect(w[0]).toBeCloseTo(1 / 30, 12);
  expect(w[4]).toBeCloseTo(1, 12);
  expect(w[2]).toBeCloseTo((1 / 30 + 1) / 2, 12);
});
