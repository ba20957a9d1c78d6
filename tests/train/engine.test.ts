// GenericTrainer: two named loaders mixed by a strategy, two optimizers each over its own head
// (a map says which steps for which loader), the step function's arguments, the errors for the
// old API shapes, manual optimization, per-loader profiling keys, exact mid-epoch resume, the loss
// scaler's skip/backoff with an injected inf (on every backend), and the run folder it writes.

import { describe, expect, test } from "bun:test";
import { mkdtemp, readFile, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GenericTrainer, GenericTrainerConfig } from "../../src/train/engine.ts";
import { MultiDataLoaderConfig, samplingOrder } from "../../src/train/sampling.ts";
import { DataLoader, TensorDataset } from "../../src/train/data_loader.ts";
import { EarlyStopping } from "../../src/train/hooks.ts";
import { GradScaler } from "../../src/train/amp.ts";
import { Module } from "../../src/nn/module.ts";
import { Linear } from "../../src/nn/layers.ts";
import { SGD } from "../../src/optim/sgd.ts";
import { AdamW } from "../../src/optim/adamw.ts";
import * as ops from "../../src/ops/index.ts";
import { fromArray, useBackend, type Tensor } from "../../src/tensor/tensor.ts";
import { Rng, seed } from "../../src/tensor/random.ts";
import { backendNames, getBackend } from "../backends.ts";

useBackend(await getBackend("wasm"));

/** A shared trunk and one head per task. */
class TwoHeads extends Module {
  readonly trunk: Linear;
  readonly headA: Linear;
  readonly headB: Linear;
  constructor() {
    super();
    seed(3);
    this.trunk = this.module("trunk", new Linear(4, 8, { std: 0.5 }));
    this.headA = this.module("headA", new Linear(8, 3, { std: 0.5 }));
    this.headB = this.module("headB", new Linear(8, 1, { std: 0.5 }));
  }
  features(x: Tensor): Tensor {
    return ops.tanh(this.trunk.forward(x));
  }
}

function data(n: number, s: number) {
  const rng = new Rng(s);
  const x = Array.from({ length: n }, () => [rng.normal(), rng.normal(), rng.normal(), rng.normal()]);
  return new TensorDataset({ x, y: x.map((r) => (r[0] > 0 ? 0 : r[1] > 0 ? 1 : 2)), t: Float32Array.from(x.map((r) => r[2] - r[3])) });
}

const TRAIN = new MultiDataLoaderConfig({ samplingStrategy: "round_robin", dataloaderNames: ["cls", "reg"] });

function setup(extra: Record<string, unknown> = {}) {
  const model = new TwoHeads();
  const optA = new AdamW([...model.trunk.parameters(), ...model.headA.parameters()], { lr: 1e-2, weightDecay: 0 });
  const optB = new SGD(model.headB.parameters(), { lr: 5e-2, momentum: 0.9 });
  const config = new GenericTrainerConfig({ trainLoaderConfig: TRAIN, logScalarsEveryNSteps: 2, optimizerLoaders: { cls: [0], reg: [1] }, ...extra } as never);
  const trainer = new GenericTrainer<Record<string, Tensor>>({ config, model, optimizers: [optA, optB], log: false });
  const calls: string[] = [];
  trainer.setTrainingStep((t, batch, batchIdx, dataloaderIdx, name) => {
    calls.push(`${name}#${batchIdx}`);
    const m = t.model as TwoHeads;
    const h = m.features(batch.x);
    if (dataloaderIdx === 0) return { loss: ops.crossEntropy(m.headA.forward(h), batch.y) };
    const err = ops.sub(ops.reshape(m.headB.forward(h), [batch.t.shape[0]]), batch.t);
    return { loss: ops.mean(ops.mul(err, err)), metrics: { mse: 1 } };
  });
  const loaders = [new DataLoader(data(20, 1), { batchSize: 4, shuffle: true, seed: 9 }), new DataLoader(data(12, 2), { batchSize: 4, shuffle: true, seed: 9 })];
  return { model, optA, optB, trainer, calls, loaders };
}

const snapshot = async (m: Module) => Promise.all(m.parameters().map(async (p) => Array.from(await p.data())));

describe("GenericTrainer", () => {
  test("the loader order is the strategy's; batchIdx counts per loader; each optimizer steps only for its loader", async () => {
    const { model, trainer, calls, loaders } = setup();
    const headB = await snapshot(model.headB);
    const trunk = await snapshot(model.trunk);
    const r = await trainer.fit({ trainLoaders: loaders, maxEpochs: 1 });
    const expected = samplingOrder(TRAIN, [5, 3]).map((i, k, all) => `${["cls", "reg"][i]}#${all.slice(0, k).filter((j) => j === i).length}`);
    expect(calls).toEqual(expected);
    expect(r.steps).toBe(8);
    expect(r.stoppedBy).toBe("done");
    expect(trainer.samplingCounts).toEqual({ cls: 5, reg: 3 });
    expect(await snapshot(model.headB)).not.toEqual(headB); // SGD stepped on reg batches
    expect(await snapshot(model.trunk)).not.toEqual(trunk); // AdamW on cls batches
    // reg batches back-propagate into the trunk, but the trunk's optimizer (0) is not mapped to reg:
    // a run of reg batches only leaves the trunk as it was
    const only = setup({ trainLoaderConfig: new MultiDataLoaderConfig({ samplingStrategy: "sequential", dataloaderNames: ["cls", "reg"] }) });
    const before = await snapshot(only.model.trunk);
    await only.trainer.fit({ trainLoaders: [[], only.loaders[1]], maxEpochs: 1 });
    expect(await snapshot(only.model.trunk)).toEqual(before);
    expect(only.calls).toEqual(["reg#0", "reg#1", "reg#2"]);
    model.dispose(); only.model.dispose();
  });

  test("lists always: a bare loader, a bare optimizer, a one-argument step are errors that say what to change", () => {
    const { model, trainer, optA } = setup();
    expect(trainer.fit({ trainLoaders: new DataLoader(data(4, 1), { batchSize: 2 }) as never })).rejects.toThrow("wrap it in a list: [loader]");
    expect(() => new GenericTrainer({ config: new GenericTrainerConfig({ trainLoaderConfig: TRAIN }), model, optimizers: optA as never })).toThrow("wrap it in a list: [optimizer]");
    expect(() => trainer.setTrainingStep(((batch: unknown) => batch) as never)).toThrow(/one-argument form \(batch\) is gone/);
    expect(() => new GenericTrainer({ config: { profileTraining: true } as never, model, optimizers: [optA] })).toThrow(/trainLoaderConfig/);
    expect(() => new GenericTrainer({ config: new GenericTrainerConfig({ trainLoaderConfig: TRAIN }), model, optimizers: [optA, new SGD(model.trunk.parameters())] })).toThrow(/belongs to two optimizers/);
    model.dispose();
  });

  test("profiling on by default: per-loader phase keys every logScalarsEveryNSteps steps", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kiln-engine-prof-"));
    const { model, trainer, loaders } = setup({ outDir: dir, loggers: ["jsonl", "csv", "html"] });
    await trainer.fit({ trainLoaders: loaders, maxEpochs: 1 });
    const lines = (await readFile(join(dir, "metrics.jsonl"), "utf8")).trim().split("\n").map((l) => JSON.parse(l));
    const logged = lines.filter((l) => "profile/train/dl_cls/time_forward_ms" in l);
    expect(logged.map((l) => l.step)).toEqual([2, 4, 6, 8]);
    for (const p of ["data", "forward", "backward", "optimizer"]) expect(typeof logged[0][`profile/train/dl_reg/time_${p}_ms`]).toBe("number");
    expect(trainer.profiler.summary()).toMatch(/cls: 5 batches +data [\d.]+ \([\d.]+%\) +forward/);
    expect(await readdir(dir)).toEqual(expect.arrayContaining(["metrics.jsonl", "metrics.csv", "report.html", "loss.svg", "metrics_summary.csv", "metrics_summary.json", "checkpoints"]));
    model.dispose();
  });

  test("manual optimization hands the optimizers to the step", async () => {
    const { model, loaders } = setup();
    const opt = new SGD(model.parameters(), { lr: 0.1 });
    const trainer = new GenericTrainer<Record<string, Tensor>>({ config: new GenericTrainerConfig({ trainLoaderConfig: TRAIN, automaticOptimization: false }), model, optimizers: [opt], log: false });
    let stepped = 0;
    trainer.setTrainingStep((t, batch, _i, dl) => {
      if (dl !== 0) return { loss: ops.mean(batch.t) };
      const m = t.model as TwoHeads;
      const loss = ops.crossEntropy(m.headA.forward(m.features(batch.x)), batch.y);
      loss.backward();
      t.optimizers[0].step();
      t.optimizers[0].zeroGrad();
      stepped++;
      return { loss };
    });
    const before = await snapshot(model.headB);
    await trainer.fit({ trainLoaders: loaders, maxEpochs: 1 });
    expect(stepped).toBe(5);
    expect(await snapshot(model.headB)).toEqual(before); // nothing stepped it: the engine did not
    model.dispose();
  });

  test("resume mid-epoch is exact: 5 steps, checkpoint, resume to the end of epoch 2 == uninterrupted (two shuffled loaders, weighted)", async () => {
    const weighted = new MultiDataLoaderConfig({ samplingStrategy: "weighted", dataloaderNames: ["cls", "reg"], dataloaderWeights: [0.6, 0.4] });
    const full = setup({ trainLoaderConfig: weighted });
    const whole = await full.trainer.fit({ trainLoaders: full.loaders, maxEpochs: 2 });
    const dir = await mkdtemp(join(tmpdir(), "kiln-engine-resume-"));
    const first = setup({ trainLoaderConfig: weighted, outDir: dir });
    const head = await first.trainer.fit({ trainLoaders: first.loaders, maxEpochs: 2, maxSteps: 5 });
    expect(head.steps).toBe(5);
    const second = setup({ trainLoaderConfig: weighted, outDir: dir });
    const tail = await second.trainer.fit({ trainLoaders: second.loaders, maxEpochs: 2, resumeFrom: dir });
    expect(tail.steps).toBe(whole.steps);
    expect([...head.lossHistory, ...tail.lossHistory]).toEqual(whole.lossHistory);
    expect([...first.calls, ...second.calls]).toEqual(full.calls);
    expect(tail.metricsSummary.rows).toEqual(whole.metricsSummary.rows); // the resumed epoch's row covers all of it
    expect(await snapshot(second.model)).toEqual(await snapshot(full.model));
    for (const s of [full, first, second]) s.model.dispose();
  });

  test("early stopping is a hook that stops the run; the result names why and the best epoch", async () => {
    const { model, loaders } = setup();
    const opt = new SGD(model.parameters(), { lr: 0 }); // nothing improves
    const trainer = new GenericTrainer<Record<string, Tensor>>({ config: new GenericTrainerConfig({ trainLoaderConfig: TRAIN }), model, optimizers: [opt], hooks: [new EarlyStopping({ patience: 2 })], log: false });
    trainer.setTrainingStep((t, batch) => ({ loss: ops.crossEntropy((t.model as TwoHeads).headA.forward((t.model as TwoHeads).features(batch.x)), batch.y) }));
    const r = await trainer.fit({ trainLoaders: loaders, valLoaders: [new DataLoader(data(8, 5), { batchSize: 4 })], maxEpochs: 10 });
    expect(r.stoppedBy).toBe("early_stop");
    expect(r.epochs).toBe(3);
    expect(r.bestEpoch).toBe(1);
    expect(r.metricsSummary.rows.map((row) => row.epoch)).toEqual([1, 2, 3]);
    expect(r.metricsSummary.columns).toEqual(expect.arrayContaining(["epoch", "train/loss", "val/loss", "train/perplexity", "val/perplexity", "train/learning_rate"]));
    expect(r.finalPerplexity).toBeCloseTo(Math.exp(r.finalValLoss!), 10);
    expect(r.ampEnabled).toBe(false);
    model.dispose();
  });

  test("useAmp on this backend: off, with one line saying why", async () => {
    const lines: string[] = [];
    const { model, optA, optB, loaders } = setup();
    const trainer = new GenericTrainer<Record<string, Tensor>>({ config: new GenericTrainerConfig({ trainLoaderConfig: TRAIN, performance: { useAmp: true } }), model, optimizers: [optA, optB], log: (l) => lines.push(l) });
    trainer.setTrainingStep((t, b) => ({ loss: ops.mean(ops.mul((t.model as TwoHeads).features(b.x), 1)) }));
    const r = await trainer.fit({ trainLoaders: loaders, maxSteps: 1 });
    expect(r.ampEnabled).toBe(false);
    expect(lines.filter((l) => l.startsWith("AMP off"))).toHaveLength(1);
    expect(lines[0]).toContain("no f16 arithmetic");
    model.dispose();
  });
});

describe.each(backendNames)("GradScaler on %s", (name) => {
  test("init 2^16; an inf gradient skips the step and halves the scale; 3 clean steps (interval 3) double it", async () => {
    const backend = await getBackend(name);
    useBackend(backend);
    const w = fromArray([1, 2, 3], [3], { backend, requiresGrad: true });
    const opt = new SGD([w], { lr: 0.5 });
    const scaler = new GradScaler({ growthInterval: 3 });
    expect(scaler.scale).toBe(65536);
    const step = async (g: number[]) => {
      w.grad = fromArray(g.map((v) => v * scaler.scale), [3], { backend });
      const { finite, gradNormSq } = await scaler.unscale([w]);
      if (finite) opt.step();
      scaler.update(finite);
      gradNormSq?.dispose();
      opt.zeroGrad();
      return finite;
    };
    expect(await step([Infinity, 0, 0])).toBe(false);
    expect(Array.from(await w.data())).toEqual([1, 2, 3]); // skipped
    expect(scaler.scale).toBe(32768);
    expect(await step([NaN, 0, 0])).toBe(false);
    expect(scaler.scale).toBe(16384);
    for (let i = 0; i < 3; i++) expect(await step([1, 1, 1])).toBe(true);
    expect(scaler.scale).toBe(32768);
    expect(Array.from(await w.data())).toBeAllClose([-0.5, 0.5, 1.5], { atol: 1e-6, rtol: 0 }); // unscaled: 3 × 0.5 × 1
    expect(scaler.skipped).toBe(2);
    w.dispose();
    useBackend(await getBackend("wasm"));
  });
});

describe("engine with the loss scaler", () => {
  test("a step with an inf loss is skipped (weights unchanged), the scale backs off, training goes on", async () => {
    const { model, loaders } = setup();
    const opt = new SGD(model.parameters(), { lr: 0.05 });
    const after: number[][][] = [];
    const trainer = new GenericTrainer<Record<string, Tensor>>({
      config: new GenericTrainerConfig({ trainLoaderConfig: TRAIN, performance: { lossScaling: true } }), model, optimizers: [opt], log: false,
      hooks: [{ onBatchEnd: async () => { after.push(await snapshot(model)); } }],
    });
    let k = 0;
    trainer.setTrainingStep((t, batch) => {
      const m = t.model as TwoHeads;
      const loss = ops.crossEntropy(m.headA.forward(m.features(batch.x)), batch.y);
      return { loss: ++k === 2 ? ops.mul(loss, Infinity) : loss };
    });
    const r = await trainer.fit({ trainLoaders: loaders, maxSteps: 3 });
    expect(r.stoppedBy).toBe("done");
    expect(r.steps).toBe(3);
    expect(trainer.scaler!.skipped).toBe(1);
    expect(trainer.scaler!.scale).toBe(32768);
    expect(after[1]).toEqual(after[0]); // step 2 skipped
    expect(after[2]).not.toEqual(after[1]);
    model.dispose();
  });
});
