// Studies on SQLite and PostgreSQL: define-by-run suggestions, enqueued trials, resuming a study,
// several processes running one study, samplers (grid), pruners (median, successive halving), the
// dict-style hyperparameterSearch with its report files, and a Trainer pruned through PruningHook.

import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createStudy, TrialPruned } from "../../src/jobs/study.ts";
import { hyperparameterSearch, suggestSpace } from "../../src/jobs/search.ts";
import { MedianPruner, SuccessiveHalvingPruner } from "../../src/jobs/pruners.ts";
import type { FrozenTrial } from "../../src/jobs/samplers.ts";
import { openStores } from "./stores.ts";

const stores = openStores();
const dir = mkdtempSync(join(tmpdir(), "kiln-study-"));
afterAll(() => {
  stores.close();
  rmSync(dir, { recursive: true, force: true });
});

describe.each(stores.kinds)("studies on $name", (kind) => {
  test("define-by-run: suggestions stay in range and on their steps; best trial; enqueued points come first", async () => {
    const storage = await kind.fresh();
    const study = await createStudy({ storage, studyName: "s", sampler: "tpe", seed: 3 });
    await study.enqueueTrial({ lr: 0.01, layers: 3 });
    await study.optimize((t) => {
      const lr = t.suggestFloat("lr", 1e-5, 1e-1, { log: true });
      const layers = t.suggestInt("layers", 1, 8);
      const drop = t.suggestFloat("dropout", 0, 0.5, { step: 0.1 });
      const act = t.suggestCategorical("act", ["relu", "gelu", "silu"]);
      expect(lr).toBeGreaterThanOrEqual(1e-5);
      expect(lr).toBeLessThanOrEqual(1e-1);
      expect(Number.isInteger(layers) && layers >= 1 && layers <= 8).toBe(true);
      expect([0, 0.1, 0.2, 0.3, 0.4, 0.5]).toContain(drop);
      expect(["relu", "gelu", "silu"]).toContain(act);
      return (Math.log10(lr) + 3) ** 2 + (layers - 4) ** 2 + drop + (act === "gelu" ? 0 : 1);
    }, { nTrials: 15 });
    expect(study.trials).toHaveLength(15);
    expect(study.trials[0].params.lr).toBe(0.01);
    expect(study.trials[0].params.layers).toBe(3);
    const values = study.trials.map((t) => t.value!);
    expect(study.bestValue).toBe(Math.min(...values));
    expect(study.bestParams).toEqual(study.trials[values.indexOf(Math.min(...values))].params);
    // a second study of the same name is refused unless joined; joining resumes its history
    await expect(createStudy({ storage, studyName: "s" })).rejects.toThrow(/already exists/);
    const again = await createStudy({ storage, studyName: "s", loadIfExists: true });
    expect(again.trials).toHaveLength(15);
    await again.optimize((t) => t.suggestFloat("lr", 1e-5, 1e-1, { log: true }), { nTrials: 2 });
    expect(again.trials.map((t) => t.number)).toEqual([...Array(17).keys()]);
    await Promise.all([study.close(), again.close()]);
  });

  test("three processes run one study: every trial numbered once, all complete", async () => {
    const storage = await kind.fresh();
    const script = join(import.meta.dir, "fixtures/study_worker.ts");
    const procs = [0, 1, 2].map(() => Bun.spawn([process.execPath, script, storage, "shared", "8"], { stderr: "pipe", stdout: "ignore" }));
    const codes = await Promise.all(procs.map((p) => p.exited));
    expect(codes).toEqual([0, 0, 0]);
    const study = await createStudy({ storage, studyName: "shared", loadIfExists: true });
    expect(study.trials).toHaveLength(24);
    expect(study.trials.map((t) => t.number)).toEqual([...Array(24).keys()]);
    expect(study.trials.every((t) => t.state === "complete" && typeof t.params.x === "number")).toBe(true);
    await study.close();
  }, 60_000);

  test("grid: every point once, then the study stops; pruned and failed trials are recorded", async () => {
    const storage = await kind.fresh();
    const grid = await createStudy({ storage, sampler: "grid", searchSpace: { a: [1, 2, 3], b: ["x", "y"] } });
    await grid.optimize((t) => t.suggestInt("a", 1, 3) + (t.suggestCategorical("b", ["x", "y"]) === "x" ? 0 : 10), { nTrials: 50 });
    expect(grid.trials).toHaveLength(6);
    expect(new Set(grid.trials.map((t) => `${t.params.a}${t.params.b}`)).size).toBe(6);
    expect(grid.bestParams).toEqual({ a: 1, b: "x" });

    const s = await createStudy({ storage });
    await s.optimize((t) => {
      t.report(5, 0);
      if (t.number === 0) throw new TrialPruned();
      return 1;
    }, { nTrials: 2 });
    await expect(s.optimize(() => {
      throw new Error("objective broke");
    }, { nTrials: 1 })).rejects.toThrow("objective broke");
    await s.optimize(() => {
      throw new RangeError("caught");
    }, { nTrials: 1, catch: [RangeError] });
    expect(s.trials.map((t) => t.state)).toEqual(["pruned", "complete", "fail", "fail"]);
    expect(s.trials[0].value).toBe(5);
    await Promise.all([grid.close(), s.close()]);
  });

  test("median pruner: a trial worse than the median at a step is pruned, a better one is not", async () => {
    const study = await createStudy({ storage: await kind.fresh(), pruner: new MedianPruner({ nStartupTrials: 3 }), sampler: "random" });
    const curve = (offset: number) => async (t: import("../../src/jobs/study.ts").Trial) => {
      for (let step = 0; step < 5; step++) {
        t.report(offset + 1 / (step + 1), step);
        if (t.shouldPrune()) throw new TrialPruned();
      }
      return offset;
    };
    for (const off of [1, 2, 3]) await study.optimize(curve(off), { nTrials: 1 });
    await study.optimize(curve(5), { nTrials: 1 });
    await study.optimize(curve(0), { nTrials: 1 });
    expect(study.trials.map((t) => t.state)).toEqual(["complete", "complete", "complete", "pruned", "complete"]);
    expect(Object.keys(study.trials[3].intermediate)).toEqual(["0"]);
    await study.close();
  });
});

test("successive halving keeps the top 1/eta at each rung", () => {
  const trial = (number: number, values: number[]): FrozenTrial => ({
    number, state: "complete", params: {}, distributions: {}, value: values.at(-1)!, userAttrs: {},
    intermediate: Object.fromEntries(values.map((v, i) => [String(i + 1), v])),
  });
  const p = new SuccessiveHalvingPruner({ minResource: 1, reductionFactor: 2 });
  const history = [trial(0, [1, 0.9, 0.8, 0.7]), trial(1, [2, 1.9, 1.8, 1.7]), trial(2, [3, 2.9]), trial(3, [0.5])];
  // rung 0 (step 1): values 1, 2, 3, 0.5 and the new one; top half goes on
  expect(p.prune(trial(9, [0.7]), history, "minimize")).toBe(false);
  expect(p.prune(trial(9, [2.5]), history, "minimize")).toBe(true);
  // rung 1 (step 2): competitors 0.9, 1.9, 2.9
  expect(p.prune(trial(9, [0.7, 1.0]), history, "minimize")).toBe(false);
  expect(p.prune(trial(9, [0.7, 2.0]), history, "minimize")).toBe(true);
  expect(p.prune(trial(9, [2.5]), history, "maximize")).toBe(false);
});

test("hyperparameterSearch: the dict-style space, results table and HTML plot in the run folder", async () => {
  const out = join(dir, "search");
  const seen: Record<string, unknown>[] = [];
  const r = await hyperparameterSearch((params) => {
    seen.push(params);
    return (Math.log10(params.lr as number) + 4) ** 2 + (params.batch_size === 8 ? 0 : 0.5) + (params.layers as number) * 0.01;
  }, { lr: [1e-5, 1e-2], batch_size: [4, 8, 16], layers: [1, 6], warmup: { choices: [0, 100] } }, { nTrials: 12, seed: 1, outDir: out });
  expect(r.trials).toHaveLength(12);
  for (const p of seen) {
    expect(Object.keys(p).sort()).toEqual(["batch_size", "layers", "lr", "warmup"]);
    expect([4, 8, 16]).toContain(p.batch_size as number);
    expect(Number.isInteger(p.layers)).toBe(true);
    expect([0, 100]).toContain(p.warmup as number);
  }
  expect(r.study.trials[0].distributions.lr).toEqual({ type: "float", low: 1e-5, high: 1e-2, log: true, step: null });
  expect(r.bestValue).toBe(Math.min(...r.trials.map((t) => t.value!)));
  const csv = readFileSync(join(out, "trials.csv"), "utf8").trim().split("\n");
  expect(csv[0]).toBe("number,state,value,params_batch_size,params_layers,params_lr,params_warmup");
  expect(csv).toHaveLength(13);
  const html = readFileSync(r.reportPath!, "utf8");
  expect(html).toContain("<svg");
  expect(html).toContain("slice: lr");
  expect(existsSync(join(out, "trials.json"))).toBe(true);
  // grid over the same kind of space: ranges become 5 points
  const g = await hyperparameterSearch((p) => (p.lr as number) * (p.bs as number), { lr: [1e-4, 1e-2], bs: [1, 2] }, { sampler: "grid", nTrials: 100 });
  expect(g.trials).toHaveLength(10);
  expect(() => suggestSpace({} as never, { bad: "x" as never })).toThrow(/bad/);
  await Promise.all([r.study.close(), g.study.close()]);
});

test("PruningHook: a Trainer's validation losses go to the trial; a hopeless run is stopped early and pruned", async () => {
  const { GPT } = await import("../../src/models/gpt.ts");
  const { TokenDataset } = await import("../../src/data/dataset.ts");
  const { CharTokenizer } = await import("../../src/data/tokenizer.ts");
  const { Trainer } = await import("../../src/train/trainer.ts");
  const { PruningHook } = await import("../../src/jobs/search.ts");
  const { seed } = await import("../../src/tensor/random.ts");
  const { init } = await import("../../src/init.ts");
  await init("wasm");
  const text = "to be or not to be, that is the question. ".repeat(30);
  const tok = CharTokenizer.fromText(text);
  const data = new TokenDataset(Int32Array.from(tok.encode(text)), 16);
  const study = await createStudy({ pruner: new MedianPruner({ nStartupTrials: 1 }), sampler: "random" });
  const runs: number[] = [];
  await study.optimize(async (trial) => {
    const lr = trial.number === 0 ? 1e-2 : 1e-7;
    seed(1);
    const model = new GPT({ vocabSize: tok.vocabSize, nLayer: 1, nHead: 2, nEmbd: 16, blockSize: 16, dropout: 0 });
    const hook = new PruningHook(trial);
    const result = await new Trainer({
      model, data, progress: false, hooks: [hook],
      args: { iters: 40, batchSize: 4, lr, warmupIters: 0, evalInterval: 10, evalIters: 2, finalEvalIters: 2, checkpointInterval: 0, seed: 1 },
    }).fit();
    runs.push(result.steps);
    model.dispose();
    hook.check();
    return result.finalValLoss!;
  }, { nTrials: 2 });
  expect(study.trials.map((t) => t.state)).toEqual(["complete", "pruned"]);
  expect(Object.keys(study.trials[0].intermediate).length).toBeGreaterThanOrEqual(4);
  expect(runs[0]).toBe(40);
  expect(runs[1]).toBeLessThan(40);
  await study.close();
});
