// Where the wasm backend's time goes in one baby-GPT training step (the ab.ts model and batch):
// kernel_timer.ts's per-kernel medians over steps. Timings: never in tests.
//   bun tests/bench/profile_step.ts [--blas auto] [--threads 2] [--steps 40]

import { parseArgs } from "node:util";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { createComputeBackend } from "../../src/backend/registry.ts";
import { kernelTimer } from "./kernel_timer.ts";
import { TokenDataset } from "../../src/data/dataset.ts";
import { CharTokenizer } from "../../src/data/tokenizer.ts";
import { GPT } from "../../src/models/gpt.ts";
import { gradNormSq } from "../../src/optim/clip.ts";
import { scope } from "../../src/tensor/memory.ts";
import { Rng, seed } from "../../src/tensor/random.ts";
import { useBackend } from "../../src/tensor/tensor.ts";
import { TrainArgs } from "../../src/train/args.ts";
import { defaultOptimizer } from "../../src/train/trainer.ts";

const { values } = parseArgs({
  options: { blas: { type: "string", default: "auto" }, threads: { type: "string" }, steps: { type: "string", default: "40" } },
});

const text = await readFile(join(import.meta.dir, "..", "..", "data", "tinyshakespeare.txt"), "utf8");
const tokenizer = CharTokenizer.fromText(text);
const data = new TokenDataset(Int32Array.from(tokenizer.encode(text)), 64);
const backend = await createComputeBackend("wasm", { blas: values.blas, ...(values.threads ? { threads: Number(values.threads) } : {}) });
useBackend(backend);
seed(1337);
const model = new GPT({ vocabSize: tokenizer.vocabSize, blockSize: 64, nLayer: 4, nHead: 4, nEmbd: 128 });
const optimizer = defaultOptimizer(model, TrainArgs.parse({}));
const rng = new Rng(1);

const timer = kernelTimer(backend);
for (let s = 0; s < 10 + Number(values.steps); s++) {
  timer.step(() => scope(() => {
    const batch = data.batch("train", 12, rng);
    const loss = model.loss(batch.x, batch.y);
    loss.backward();
    optimizer.step({ gradNormSq: gradNormSq(optimizer.params), maxNorm: 1 });
    optimizer.zeroGrad();
    return loss.dataSync()[0];
  }), s < 10);
}
timer.report();
process.exit(0);
