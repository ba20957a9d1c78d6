// The Trainer's maths against plain PyTorch (tests/fixtures/make_trainer_ref.py): nanoGPT's
// get_lr schedule, gradient accumulation (2 micro-batches == the full batch: catches a missing
// 1/N), clip_grad_norm_ (norm and clipped gradients, a clipping and a non-clipping case: catches an
// inverted condition) through clipGradNorm, SGD and AdamW's fused clip, and the fixed-batch eval
// loss (catches a wrong divisor). Then resume: each RNG stream and the optimizer step restored,
// and Rng.global never written.

import { describe, expect, test } from "bun:test";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Trainer, type BatchSource } from "../../src/train/trainer.ts";
import { SGD } from "../../src/optim/sgd.ts";
import { AdamW } from "../../src/optim/adamw.ts";
import { clipGradNorm, gradNormSq } from "../../src/optim/clip.ts";
import { warmupCosine } from "../../src/optim/schedule.ts";
import { useBackend } from "../../src/tensor/tensor.ts";
import { scope } from "../../src/tensor/memory.ts";
import { Rng, seed } from "../../src/tensor/random.ts";
import { GPT } from "../../src/models/gpt.ts";
import { TokenDataset } from "../../src/data/dataset.ts";
import { getBackend } from "../backends.ts";
import { Mlp, REF, expectParams, rows } from "../optim/mlp_fixture.ts";

useBackend(await getBackend("wasm"));

/** The fixture's rows in order: train batches walk rows 0..3, val batches rows 0..5 (restarting per evaluate). */
class FixedRows implements BatchSource<{ x: ReturnType<typeof rows>["x"]; y: ReturnType<typeof rows>["y"] }> {
  train = 0;
  val = 0;
  batch(split: "train" | "val", batchSize: number) {
    const at = split === "train" ? this.train : this.val;
    if (split === "train") this.train = (at + batchSize) % 4;
    else this.val = (at + batchSize) % 6;
    return rows(at, at + batchSize, split);
  }
}

// the schedule sets the optimizer's lr every step: args.lr is the lr (constant schedule)
const QUIET = { evalInterval: 0, logInterval: 1, checkpointInterval: 0, schedule: "constant" as const, weightDecay: 0 };

describe("trainer maths vs PyTorch", () => {
  test("the warmup + cosine schedule is nanoGPT's get_lr (111 steps)", () => {
    const { learning_rate: lr, min_lr: minLr, warmup_iters: warmupSteps, lr_decay_iters: decaySteps } = REF.get_lr.args;
    const mine = REF.get_lr.lrs.map((_: number, it: number) => warmupCosine(it, { lr, minLr, warmupSteps, decaySteps }));
    expect(mine).toBeAllClose(REF.get_lr.lrs, { atol: 1e-15, rtol: 0 });
    const trainer = new Trainer({ model: new Mlp(), data: new FixedRows(), progress: false, args: { iters: decaySteps, lr, minLr, warmupIters: warmupSteps } });
    expect(REF.get_lr.lrs.map((_: number, it: number) => trainer.lrAt(it))).toBeAllClose(REF.get_lr.lrs, { atol: 1e-15, rtol: 0 });
  });

  test("gradient accumulation 2 x batch 2 == one full batch of 4 (one SGD step)", async () => {
    const model = new Mlp();
    const trainer = new Trainer({
      model, data: new FixedRows(), progress: false, optimizer: new SGD(model.parameters(), { lr: REF.accum2.sgd_lr }),
      args: { ...QUIET, lr: REF.accum2.sgd_lr, iters: 1, batchSize: 2, gradAccum: 2, gradClip: 0, finalEvalIters: 1 },
    });
    const result = await trainer.fit();
    // the logged loss is the mean of the micro-batch losses
    expect(result.lossHistory[0]).toBeCloseTo((REF.accum2.micro_losses[0] + REF.accum2.micro_losses[1]) / 2, 5);
    expect(result.lossHistory[0]).toBeCloseTo(REF.full_batch.loss, 5);
    await expectParams(model, REF.accum2.after_sgd, 1e-6);
    model.dispose();
  });

  for (const c of REF.clip as { max_norm: number; norm: number; clipped_grads: Record<string, number[]>; after_sgd: Record<string, number[]>; after_adamw: Record<string, number[]> }[]) {
    const what = c.max_norm < c.norm ? "clips" : "leaves alone";
    test(`clip_grad_norm_ (max ${c.max_norm}, norm ${c.norm.toFixed(3)}) ${what}: clipGradNorm, the Trainer's SGD step, AdamW's fused clip`, async () => {
      const model = new Mlp();
      const { x, y } = rows(0, 4);
      scope(() => model.loss(x, y).backward());
      expect(Math.sqrt(await gradNormSq(model.parameters()).item())).toBeCloseTo(c.norm, 5);
      expect(await clipGradNorm(model.parameters(), c.max_norm)).toBeCloseTo(c.norm, 5);
      for (const [n, p] of model.namedParameters()) expect(Array.from(await p.grad!.data())).toBeAllClose(c.clipped_grads[n], { atol: 1e-7, rtol: 1e-5 });
      model.dispose();

      const viaTrainer = new Mlp();
      await new Trainer({
        model: viaTrainer, data: new FixedRows(), progress: false, optimizer: new SGD(viaTrainer.parameters(), { lr: 0.1 }),
        args: { ...QUIET, lr: 0.1, iters: 1, batchSize: 4, gradClip: c.max_norm, finalEvalIters: 1 },
      }).fit();
      await expectParams(viaTrainer, c.after_sgd, 1e-6);
      viaTrainer.dispose();

      const fused = new Mlp();
      const opt = new AdamW(fused.parameters(), { lr: 0.01, betas: [0.9, 0.99], eps: 1e-3, weightDecay: 0.1 });
      scope(() => {
        fused.loss(x, y).backward();
        opt.step({ gradNormSq: gradNormSq(fused.parameters()), maxNorm: c.max_norm });
      });
      await expectParams(fused, c.after_adamw, 1e-6);
      x.dispose(); y.dispose(); opt.dispose(); fused.dispose();
    });
  }

  test("the eval loss is the mean of the batches' mean losses (3 fixed batches of 2)", async () => {
    const model = new Mlp();
    const trainer = new Trainer({ model, data: new FixedRows(), progress: false, args: { ...QUIET, batchSize: 2 } });
    expect(await trainer.evaluate("val", 3)).toBeCloseTo(REF.eval.mean, 5);
    model.dispose();
  });
});

describe("resume restores every stream the Trainer owns", () => {
  const text = "O Romeo, Romeo! wherefore art thou Romeo? Deny thy father and refuse thy name.\n".repeat(30);
  const chars = [...new Set(text)];
  const data = new TokenDataset(Int32Array.from([...text].map((c) => chars.indexOf(c))), 16);
  const ARGS = { iters: 8, decayIters: 8, batchSize: 4, evalInterval: 0, finalEvalIters: 1, logInterval: 1, checkpointInterval: 4, warmupIters: 2, seed: 11 };
  const makeModel = () => {
    seed(5);
    return new GPT({ vocabSize: chars.length, blockSize: 16, nLayer: 1, nHead: 2, nEmbd: 16, dropout: 0.2 });
  };

  test("batch RNG, dropout RNG and the optimizer step equal an uninterrupted run's at the resume point; Rng.global untouched", async () => {
    type Snap = { rng: unknown; dropout: unknown; optStep: number };
    const snap = (t: Trainer): Snap => ({ rng: t.rng.getState(), dropout: t.dropoutRng.getState(), optStep: t.optimizer.stepCount });
    let atFour: Snap | undefined;
    const full = makeModel();
    await new Trainer({ model: full, data, progress: false, args: ARGS, hooks: [{ onBatchEnd: (t, _b, { step }) => { if (step === 4) atFour = snap(t); } }] }).fit();

    const dir = await mkdtemp(join(tmpdir(), "kiln-resume-streams-"));
    const first = makeModel();
    await new Trainer({ model: first, data, progress: false, outDir: dir, args: { ...ARGS, iters: 4 } }).fit();
    const resumed = makeModel();
    Rng.global.reseed(999);
    const globalBefore = JSON.stringify(Rng.global.getState());
    let atBegin: Snap | undefined;
    await new Trainer({ model: resumed, data, progress: false, outDir: dir, resume: true, args: ARGS, hooks: [{ onTrainBegin: (t) => { atBegin = snap(t); } }] }).fit();
    expect(atBegin!.optStep).toBe(4);
    expect(atBegin!.rng).toEqual(atFour!.rng);
    expect(atBegin!.dropout).toEqual(atFour!.dropout);
    expect(atBegin!.optStep).toEqual(atFour!.optStep);
    expect(JSON.stringify(Rng.global.getState())).toBe(globalBefore);
    for (const m of [full, first, resumed]) m.dispose();
  });

  test("a training step draws dropout from the Trainer's stream, not Rng.global", async () => {
    const model = makeModel();
    const trainer = new Trainer({ model, data, progress: false, args: { ...ARGS, iters: 2 } });
    const before = JSON.stringify(Rng.global.getState());
    const dropoutBefore = JSON.stringify(trainer.dropoutRng.getState());
    await trainer.fit();
    expect(JSON.stringify(Rng.global.getState())).toBe(before);
    expect(JSON.stringify(trainer.dropoutRng.getState())).not.toBe(dropoutBefore);
    model.dispose();
  });
});
