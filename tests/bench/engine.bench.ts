// engine_overhead/baby: what the training engine costs over a bare loop. The default baby GPT on
// the same batches three ways — a hand-written loop (forward, backward, AdamW step with fused
// clipping, zero-grad, one loss read per step), the Trainer's step API (`kiln train`'s path), and
// GenericTrainer with one loader and profiling on — in alternating rounds (A B C A B C ...) so a
// busy machine's drift falls on all three alike. Reports median ms/step and each engine's overhead.

import type { Backend } from "../../src/backend/backend.ts";
import { GPT } from "../../src/models/gpt.ts";
import { useBackend, type Tensor } from "../../src/tensor/tensor.ts";
import { Rng, seed, withRng } from "../../src/tensor/random.ts";
import { scope } from "../../src/tensor/memory.ts";
import { gradNormSq } from "../../src/optim/clip.ts";
import { Trainer, defaultOptimizer } from "../../src/train/trainer.ts";
import { TrainArgs } from "../../src/train/args.ts";
import { GenericTrainer, GenericTrainerConfig } from "../../src/train/engine.ts";
import { TokenDataset, type Batch } from "../../src/data/dataset.ts";

export interface OverheadFigure {
  bare_ms: number;
  trainer_ms: number;
  generic_ms: number;
  trainer_overhead_pct: number;
  generic_overhead_pct: number;
}

export async function benchEngineOverhead(backend: Backend, data: TokenDataset, vocabSize: number, { rounds = 5, steps = 12 } = {}): Promise<OverheadFigure> {
  useBackend(backend);
  const cfg = { vocabSize, blockSize: 64, nLayer: 4, nHead: 4, nEmbd: 128 };
  const args = TrainArgs.parse({ iters: steps, batchSize: 12, evalInterval: 0, finalEvalIters: 1, logInterval: 10, schedule: "constant" });
  seed(1337);
  const model = new GPT(cfg);
  const times = { bare: [] as number[], trainer: [] as number[], generic: [] as number[] };
  const perStep = (t0: number) => (performance.now() - t0) / steps;

  const bare = async () => {
    const opt = defaultOptimizer(model, args);
    const rng = new Rng(7);
    const dropout = new Rng(8);
    const t0 = performance.now();
    for (let s = 0; s < steps; s++) {
      const loss = withRng(dropout, () => scope(() => {
        const b = data.batch("train", args.batchSize, rng);
        const l = model.loss(b.x, b.y);
        l.backward();
        opt.step({ gradNormSq: gradNormSq(opt.params), maxNorm: args.gradClip });
        opt.zeroGrad();
        return l.detach();
      }));
      await loss.data();
      loss.dispose();
    }
    times.bare.push(perStep(t0));
    opt.dispose();
  };
  const viaTrainer = async () => {
    const trainer = new Trainer({ model, data, args, progress: false, outDir: null });
    const t0 = performance.now();
    await trainer.fit();
    times.trainer.push((performance.now() - t0 - trainer.engine.evalMs) / steps);
    trainer.optimizer.dispose();
  };
  const viaGeneric = async () => {
    const opt = defaultOptimizer(model, args);
    const engine = new GenericTrainer<Batch>({
      config: new GenericTrainerConfig({ trainLoaderConfig: { dataloaderNames: ["train"] }, maxGradNorm: args.gradClip, maxSteps: steps, profileTraining: true, logScalarsEveryNSteps: 10, checkpointEveryNEpochs: 0 }),
      model, optimizers: [opt], log: false,
    });
    engine.setTrainingStep((t, b: Batch) => (t.model as GPT).loss(b.x, b.y) as Tensor);
    const rng = new Rng(7);
    const t0 = performance.now();
    await engine.fit({ trainLoaders: [{ prefetch: false, *iterate() { for (;;) yield data.batch("train", args.batchSize, rng); } }] });
    times.generic.push(perStep(t0));
    opt.dispose();
  };
  await bare(); // warm-up: JIT tier-up, buffer pools
  times.bare.length = 0;
  for (let r = 0; r < rounds; r++) for (const run of [bare, viaTrainer, viaGeneric]) await run();
  model.dispose();
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const [b, t, g] = [med(times.bare), med(times.trainer), med(times.generic)];
  return { bare_ms: +b.toFixed(2), trainer_ms: +t.toFixed(2), generic_ms: +g.toFixed(2), trainer_overhead_pct: +((100 * (t - b)) / b).toFixed(1), generic_overhead_pct: +((100 * (g - b)) / b).toFixed(1) };
}
