// The Trainer's task API on non-LM models (the engine is general): a classifier and a regression
// learn, the task is inferred from the batch and said, accuracy is reported, the per-epoch summary
// is written, resumeFrom continues exactly, trainModel maps the old helper's names once, and
// pad_token_id is asked for where rows need padding.

import { describe, expect, test } from "bun:test";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Trainer, trainModel, accuracy } from "../../src/train/trainer.ts";
import { TrainingConfig } from "../../src/train/training_config.ts";
import { TensorDataset } from "../../src/train/data_loader.ts";
import { Progress } from "../../src/train/progress.ts";
import { Module } from "../../src/nn/module.ts";
import { Linear } from "../../src/nn/layers.ts";
import * as ops from "../../src/ops/index.ts";
import { fromArray, useBackend, type Tensor } from "../../src/tensor/tensor.ts";
import { Rng, seed } from "../../src/tensor/random.ts";
import { GPT } from "../../src/models/gpt.ts";
import { getBackend } from "../backends.ts";

useBackend(await getBackend("wasm"));

class Mlp extends Module {
  readonly a: Linear;
  readonly b: Linear;
  constructor(out: number) {
    super();
    seed(1);
    this.a = this.module("a", new Linear(2, 16, { std: 0.5 }));
    this.b = this.module("b", new Linear(16, out, { std: 0.5 }));
  }
  forward(x: Tensor): Tensor {
    return this.b.forward(ops.tanh(this.a.forward(x)));
  }
}

function blobs(n: number, s: number) {
  const rng = new Rng(s);
  const x = Array.from({ length: n }, () => [rng.normal(), rng.normal()]);
  return { x, cls: x.map((r) => (r[0] > 0.3 ? 0 : r[1] > 0 ? 1 : 2)), reg: Float32Array.from(x.map((r) => 0.5 * r[0] - r[1])) };
}

const quiet = (): Progress & { lines: string[] } => {
  const lines: string[] = [];
  const p = new Progress({ write: (s: string) => lines.push(s), isTTY: false } as never) as Progress & { lines: string[] };
  p.lines = lines;
  return p;
};

describe("Trainer task API", () => {
  test("a classifier learns; the task is inferred and said; accuracy and the summary are reported and written", async () => {
    const train = blobs(240, 3);
    const val = blobs(60, 4);
    const dir = await mkdtemp(join(tmpdir(), "kiln-task-"));
    const progress = quiet();
    const trainer = new Trainer({
      model: new Mlp(3), progress, outDir: dir,
      trainingConfig: new TrainingConfig({ learningRate: 3e-2, batchSize: 16, epochs: 4, loggingInterval: 5, logger: ["jsonl", "csv"] }),
    });
    const r = await trainer.train(new TensorDataset({ x: train.x, y: train.cls }), new TensorDataset({ x: val.x, y: val.cls }));
    expect(progress.lines.join("")).toContain("task: classification (inferred from the batch: one integer target per row");
    expect(r.stoppedBy).toBe("done");
    expect(r.epochs).toBe(4);
    expect(r.steps).toBe(60);
    const rows = r.metricsSummary.rows;
    expect(rows.map((x) => x.epoch)).toEqual([1, 2, 3, 4]);
    expect(rows[3]["val/accuracy"]).toBeGreaterThan(0.9);
    expect(rows[3]["val/accuracy"]).toBeLessThanOrEqual(1);
    expect(rows[3]["train/loss"]).toBeLessThan(rows[0]["train/loss"]);
    expect(r.finalValLoss).toBe(rows[3]["val/loss"]);
    expect(r.gradNormHistory).toHaveLength(60); // maxGradNorm 1.0 by default: the norm of every step
    expect(r.bestEpoch).toBeGreaterThanOrEqual(1);
    const csv = await readFile(join(dir, "metrics_summary.csv"), "utf8");
    expect(csv.split("\n")[0]).toBe(r.metricsSummary.columns.join(","));
    expect(JSON.parse(await readFile(join(dir, "metrics_summary.json"), "utf8"))).toHaveLength(4);
    expect(r.metricsSummary.format()).toContain("val/accuracy");
  });

  test("regression (float targets) is inferred and fitted", async () => {
    const d = blobs(200, 5);
    const r = await new Trainer({ model: new Mlp(1), progress: false, trainingConfig: new TrainingConfig({ learningRate: 2e-2, batchSize: 20, epochs: 6 }) })
      .train(new TensorDataset({ x: d.x, y: d.reg }));
    expect(r.lossHistory[r.lossHistory.length - 1]).toBeLessThan(r.lossHistory[0] / 5);
    expect(r.metricsSummary.rows[0]["train/accuracy"]).toBeUndefined();
  });

  test("accuracy() counts rows whose target has the top logit", async () => {
    const logits = fromArray([2, 1, 0, 0, 3, 1, 1, 1, 5, 0.5, 0.4, 0.3], [4, 3]);
    const y = fromArray([0, 1, 0, 1], [4], { dtype: "i32" });
    expect(await accuracy(logits, y).item()).toBeCloseTo(0.5, 6); // rows 0 and 1 right, 2 and 3 wrong
  });

  test("resumeFrom continues mid-run exactly (shuffled epochs, a checkpoint per epoch)", async () => {
    const d = blobs(64, 6);
    const cfg = (epochs: number) => new TrainingConfig({ learningRate: 1e-2, batchSize: 8, epochs, randomSeed: 3 });
    const data = new TensorDataset({ x: d.x, y: d.cls });
    const full = await new Trainer({ model: new Mlp(3), progress: false, trainingConfig: cfg(3) }).train(data);
    const dir = await mkdtemp(join(tmpdir(), "kiln-task-resume-"));
    const head = await new Trainer({ model: new Mlp(3), progress: false, outDir: dir, trainingConfig: cfg(2) }).train(data);
    const tail = await new Trainer({ model: new Mlp(3), progress: false, outDir: dir, trainingConfig: cfg(3) }).train(data, undefined, { resumeFrom: dir });
    expect([...head.lossHistory, ...tail.lossHistory]).toEqual(full.lossHistory);
    expect(tail.epochs).toBe(3);
  });

  test("trainModel takes the old helper's names with one notice each", async () => {
    const d = blobs(32, 7);
    const warn = console.warn;
    const notices: string[] = [];
    console.warn = (l: string) => notices.push(l);
    try {
      const r = await trainModel(new Mlp(3), new TensorDataset({ x: d.x, y: d.cls }), { learning_rate: 1e-2, batch_size: 8, n_epochs: 2, gradient_clip_norm: 0.5 }, { progress: false });
      expect(r.epochs).toBe(2);
      expect(r.steps).toBe(8);
    } finally {
      console.warn = warn;
    }
    expect(notices.some((l) => l.includes('"n_epochs" is now "epochs"'))).toBe(true);
    expect(notices.some((l) => l.includes('"gradient_clip_norm" is now "maxGradNorm"'))).toBe(true);
    expect(() => new TrainingConfig({ learningRate: 1, batchSize: 1, epochs: 1, n_epochs: 1 } as never)).toThrow(/use epochs/);
  });

  test("language modeling rows of different lengths need pad_token_id; with it, a GPT trains", async () => {
    const rows = [[1, 2, 3, 4, 5], [6, 7, 8], [2, 4, 6, 8, 1, 3]];
    const ds = rows.map((r) => ({ x: r.slice(0, -1), y: r.slice(1) }));
    seed(2);
    const gpt = new GPT({ vocabSize: 10, blockSize: 8, nLayer: 1, nHead: 2, nEmbd: 8 });
    const cfg = new TrainingConfig({ learningRate: 1e-2, batchSize: 3, epochs: 1 });
    expect(new Trainer({ model: gpt, progress: false, trainingConfig: cfg }).train(ds)).rejects.toThrow(/add padTokenId \(pad_token_id\) to the config or the TaskSpec/);
    const progress = quiet();
    const r = await new Trainer({ model: gpt, progress, trainingConfig: new TrainingConfig({ learningRate: 1e-2, batchSize: 3, epochs: 2, padTokenId: 0 }) }).train(ds);
    expect(progress.lines.join("")).toContain("task: language_modeling");
    expect(r.steps).toBe(2);
    expect(Number.isFinite(r.finalLoss)).toBe(true);
    gpt.dispose();
  });
});
