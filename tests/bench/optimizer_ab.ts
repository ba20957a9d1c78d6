// In-process A/B of the optimizer step alone on the baby GPT (its 52 parameters, gradients from one
// backward): AdamW's launches as one group (the wasm multi-tensor job, src/backend/wasm/multi_tensor.ts)
// against one launch per parameter, alternating round by round; the time includes the global grad
// norm (gradNormSq), also printed alone. Timings: never in tests.
//   bun tests/bench/optimizer_ab.ts [--threads 2] [--rounds 400]

import { parseArgs } from "node:util";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { KernelLaunch } from "../../src/backend/backend.ts";
import { createComputeBackend } from "../../src/backend/registry.ts";
import { TokenDataset } from "../../src/data/dataset.ts";
import { CharTokenizer } from "../../src/data/tokenizer.ts";
import { GPT } from "../../src/models/gpt.ts";
import { gradNormSq } from "../../src/optim/clip.ts";
import { scope } from "../../src/tensor/memory.ts";
import { Rng, seed } from "../../src/tensor/random.ts";
import { useBackend } from "../../src/tensor/tensor.ts";
import { TrainArgs } from "../../src/train/args.ts";
import { defaultOptimizer } from "../../src/train/trainer.ts";

const { values } = parseArgs({ options: { threads: { type: "string", default: "2" }, rounds: { type: "string", default: "400" } } });
const text = await readFile(join(import.meta.dir, "..", "..", "data", "tinyshakespeare.txt"), "utf8");
const tokenizer = CharTokenizer.fromText(text);
const data = new TokenDataset(Int32Array.from(tokenizer.encode(text)), 64);
const backend = await createComputeBackend("wasm", { threads: Number(values.threads) });
useBackend(backend);
seed(1337);
const model = new GPT({ vocabSize: tokenizer.vocabSize, blockSize: 64, nLayer: 4, nHead: 4, nEmbd: 128 });
const optimizer = defaultOptimizer(model, TrainArgs.parse({}));
scope(() => {
  const batch = data.batch("train", 12, new Rng(1));
  model.loss(batch.x, batch.y).backward();
});

const grouped = backend.runGroup!.bind(backend);
const perParam = (launches: readonly KernelLaunch[]) => {
  if (!launches.every((l) => l.kernel === "adamw")) return grouped(launches);
  for (const l of launches) backend.run(l.kernel, l.inputs, l.outputs, l.params as never);
};
const ms = { grouped: [] as number[], perParam: [] as number[], norm: [] as number[] };
for (let r = 0; r < Number(values.rounds); r++) {
  for (const mode of r % 2 ? (["grouped", "perParam"] as const) : (["perParam", "grouped"] as const)) {
    backend.runGroup = mode === "grouped" ? grouped : perParam;
    const t0 = performance.now();
    scope(() => {
      const normSq = gradNormSq(optimizer.params);
      ms.norm.push(performance.now() - t0);
      optimizer.step({ gradNormSq: normSq, maxNorm: 1 });
    });
    ms[mode].push(performance.now() - t0);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(
  `${backend.device}: optimizer step with grad norm, median ms: one launch per parameter ${median(ms.perParam).toFixed(3)}, ` +
    `grouped ${median(ms.grouped).toFixed(3)}; grad norm alone ${median(ms.norm).toFixed(3)}`,
);
process.exit(0);
