// Where the wasm backend's time goes in one baby-GPT training step (the ab.ts model and batch):
// every backend.run / runGroup is timed, summed per kernel (matmul per shape) within each step, and
// the median over steps is printed, so a busy machine's outliers do not pile up as in KILN_DEBUG=1
// totals. Timings: never in tests.
//   bun tests/bench/profile_step.ts [--blas auto] [--threads 2] [--steps 40]

import { parseArgs } from "node:util";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { createComputeBackend } from "../../src/backend/registry.ts";
import type { KernelLaunch } from "../../src/backend/backend.ts";
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

let current = new Map<string, number>();
const label = (kernel: string, p: Record<string, number>) =>
  kernel === "matmul" ? `matmul ${p.M}x${p.K}${p.transA ? "T" : ""}.${p.K}x${p.N}${p.transB ? "T" : ""}${p.hasBias ? "+b" : ""}`
    : "n" in p && kernel !== "adamw" ? `${kernel} n=${p.n}` : kernel;
const run = backend.run.bind(backend);
backend.run = ((kernel: string, inputs: never, outputs: never, params: Record<string, number>) => {
  const t0 = performance.now();
  run(kernel as never, inputs, outputs, params as never);
  const key = label(kernel, params);
  current.set(key, (current.get(key) ?? 0) + performance.now() - t0);
}) as typeof backend.run;
const runGroup = backend.runGroup?.bind(backend);
if (runGroup) {
  backend.runGroup = (launches: readonly KernelLaunch[]) => {
    const t0 = performance.now();
    runGroup(launches);
    const key = `group ${launches.map((l) => label(l.kernel, l.params as Record<string, number>)).join(" + ")}`;
    current.set(key, (current.get(key) ?? 0) + performance.now() - t0);
  };
}

const perStep: Map<string, number>[] = [], totals: number[] = [];
for (let s = 0; s < 10 + Number(values.steps); s++) {
  current = new Map();
  const t0 = performance.now();
  scope(() => {
    const batch = data.batch("train", 12, rng);
    const loss = model.loss(batch.x, batch.y);
    loss.backward();
    optimizer.step({ gradNormSq: gradNormSq(optimizer.params), maxNorm: 1 });
    optimizer.zeroGrad();
    return loss.dataSync()[0];
  });
  if (s >= 10) {
    perStep.push(current);
    totals.push(performance.now() - t0);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const keys = new Set(perStep.flatMap((m) => [...m.keys()]));
const rows = [...keys].map((k) => ({ k, ms: median(perStep.map((m) => m.get(k) ?? 0)) })).sort((a, b) => b.ms - a.ms);
const step = median(totals), inKernels = rows.reduce((s, r) => s + r.ms, 0);
console.log(`${backend.device}: step median ${step.toFixed(2)} ms, kernels ${inKernels.toFixed(2)} ms (medians per step)`);
for (const r of rows) console.log(`  ${r.ms.toFixed(3).padStart(8)} ms ${((100 * r.ms) / step).toFixed(1).padStart(5)}%  ${r.k}`);
process.exit(0);
