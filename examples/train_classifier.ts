// The Trainer on a non-language model: a small MLP classifies 2-D points into three regions.
// TrainingConfig + a TensorDataset; the task (classification) is inferred from the batch.
// Run: bun examples/train_classifier.ts [wasm|webgpu|auto]
import * as kiln from "../src/index.ts";

const backend = await kiln.init(process.argv[2] ?? "wasm", { seed: 0 });
console.log(`backend: ${backend.name} (${backend.device})`);

class Classifier extends kiln.Module {
  hidden = this.module("hidden", new kiln.Linear(2, 32, { std: 0.5 }));
  out = this.module("out", new kiln.Linear(32, 3, { std: 0.5 }));
  forward(x: kiln.Tensor): kiln.Tensor {
    return this.out.forward(this.hidden.forward(x).tanh()); // [B, 3] logits
  }
}

// points labelled by region: right of x = 0.3 → 0, else above y = 0 → 1, else 2
const rng = new kiln.Rng(7);
const points = (n: number) => {
  const x = Array.from({ length: n }, () => [rng.normal(), rng.normal()]);
  return new kiln.TensorDataset({ x, y: x.map(([a, b]) => (a > 0.3 ? 0 : b > 0 ? 1 : 2)) });
};

const trainer = new kiln.Trainer({
  model: new Classifier(),
  trainingConfig: new kiln.TrainingConfig({ learningRate: 3e-2, batchSize: 32, epochs: 8, maxGradNorm: 1.0, useLrSchedule: true, warmupSteps: 5, loggingInterval: 20 }),
  hooks: [new kiln.EarlyStopping({ metric: "val/loss", patience: 3 })],
});
const results = await trainer.train(points(800), points(200));

console.log(results.metricsSummary.format());
console.log(`final val loss ${results.finalValLoss?.toFixed(4)}, val accuracy ${results.metricsSummary.rows.at(-1)!["val/accuracy"].toFixed(3)}, ` +
  `best epoch ${results.bestEpoch}, ${results.steps} steps in ${results.trainingTime.toFixed(1)} s (stopped: ${results.stoppedBy})`);
