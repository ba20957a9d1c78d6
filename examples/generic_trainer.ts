// GenericTrainer with two named loaders and two optimizers: a shared trunk with a classification
// head (AdamW, "cls" batches) and a regression head (SGD with momentum, "reg" batches), mixed by
// weighted sampling. The training step gets (trainer, batch, batchIdx, dataloaderIdx, dataloaderName).
// Run: bun examples/generic_trainer.ts [wasm|webgpu|auto]
import * as kiln from "../src/index.ts";

const backend = await kiln.init(process.argv[2] ?? "wasm", { seed: 0 });
console.log(`backend: ${backend.name} (${backend.device})`);

class TwoTasks extends kiln.Module {
  trunk = this.module("trunk", new kiln.Linear(4, 32, { std: 0.4 }));
  cls = this.module("cls", new kiln.Linear(32, 3, { std: 0.4 }));
  reg = this.module("reg", new kiln.Linear(32, 1, { std: 0.4 }));
  features(x: kiln.Tensor): kiln.Tensor {
    return this.trunk.forward(x).tanh(); // [B, 32]
  }
}

const rng = new kiln.Rng(11);
const rows = (n: number) => Array.from({ length: n }, () => [rng.normal(), rng.normal(), rng.normal(), rng.normal()]);
const clsRows = rows(600);
const regRows = rows(300);
const loader = (ds: kiln.TensorDataset, shuffle = true) => new kiln.DataLoader(ds, { batchSize: 20, shuffle, seed: 1 });
const cls = new kiln.TensorDataset({ x: clsRows, y: clsRows.map((r) => (r[0] + r[1] > 0 ? 0 : r[2] > 0 ? 1 : 2)) });
const reg = new kiln.TensorDataset({ x: regRows, t: Float32Array.from(regRows.map((r) => r[0] - 0.5 * r[3])) });

const model = new TwoTasks();
const config = new kiln.GenericTrainerConfig({
  trainLoaderConfig: new kiln.MultiDataLoaderConfig({ samplingStrategy: kiln.SamplingStrategy.WEIGHTED, dataloaderNames: ["cls", "reg"], dataloaderWeights: [0.6, 0.4] }),
  valLoaderConfig: new kiln.MultiDataLoaderConfig({ samplingStrategy: kiln.SamplingStrategy.SEQUENTIAL, dataloaderNames: ["cls_val"] }),
  optimizerLoaders: { cls: [0], reg: [1] }, // each batch steps the optimizer of its task
  maxGradNorm: 1.0, profileTraining: true, logScalarsEveryNSteps: 10,
});
const optimizers = [
  new kiln.AdamW([...model.trunk.parameters(), ...model.cls.parameters()], { lr: 1e-2, weightDecay: 0 }),
  new kiln.SGD(model.reg.parameters(), { lr: 5e-2, momentum: 0.9 }),
];
const trainer = new kiln.GenericTrainer<kiln.TensorBatch>({ config, model, optimizers });
trainer.setTrainingStep((t, batch, _batchIdx, dataloaderIdx) => {
  const m = t.model as TwoTasks;
  const h = m.features(batch.x);
  if (dataloaderIdx === 0) {
    const logits = m.cls.forward(h);
    return { loss: kiln.crossEntropy(logits, batch.y), metrics: { accuracy: kiln.accuracy(logits, batch.y) } };
  }
  const err = m.reg.forward(h).reshape([-1]).sub(batch.t);
  return { loss: err.mul(err).mean() };
});
trainer.setValidationStep((t, batch) => {
  const m = t.model as TwoTasks;
  const logits = m.cls.forward(m.features(batch.x));
  return { loss: kiln.crossEntropy(logits, batch.y), metrics: { accuracy: kiln.accuracy(logits, batch.y) } };
});
const clsVal = rows(100);
const results = await trainer.fit({
  trainLoaders: [loader(cls), loader(reg)],
  valLoaders: [loader(new kiln.TensorDataset({ x: clsVal, y: clsVal.map((r) => (r[0] + r[1] > 0 ? 0 : r[2] > 0 ? 1 : 2)) }), false)],
  maxEpochs: 5,
});
console.log(results.metricsSummary.format());
console.log(`batches per loader: ${JSON.stringify(trainer.samplingCounts)}; val accuracy ${results.metricsSummary.rows.at(-1)!["val/accuracy"].toFixed(3)}`);
