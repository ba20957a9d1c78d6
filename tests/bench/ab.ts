// In-process A/B of wasm backend variants on the baby-GPT training step (4 layers, 4 heads, 128
// wide, context 64, batch 12, AdamW, grad clip 1): one model per variant, the variants take turns
// step by step in one process, so a busy machine slows them alike. Prints each variant's median
// ms/step (p10, p90) and the median of the per-round ratios to the first variant.
//   bun tests/bench/ab.ts [--blas "auto;off;auto:blasMinFlops=4e6"] [--threads 2] [--steps 60] [--warmup 10]
// A variant is a KILN_BLAS setting (auto, off, or a library path), optionally followed by matmul
// split settings (src/backend/wasm/matmul.ts matmulSplit): "auto:blasMinFlops=4e6,blasChunksPerThread=1",
// and/or perParamAdamw=1: AdamW's grouped launches run one by one (as before the multi-tensor job),
// and/or splitQkv=1: GPT attention on split copies of q, k, v (src/models/gpt.ts gptAttention).
// Timings: never in tests.

import { parseArgs } from "node:util";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { createComputeBackend } from "../../src/backend/registry.ts";
import { matmulSplit } from "../../src/backend/wasm/matmul.ts";
import { TokenDataset } from "../../src/data/dataset.ts";
import { CharTokenizer } from "../../src/data/tokenizer.ts";
import { GPT, gptAttention } from "../../src/models/gpt.ts";
import { gradNormSq } from "../../src/optim/clip.ts";
import { scope } from "../../src/tensor/memory.ts";
import { Rng, seed } from "../../src/tensor/random.ts";
import { useBackend } from "../../src/tensor/tensor.ts";
import { TrainArgs } from "../../src/train/args.ts";
import { defaultOptimizer } from "../../src/train/trainer.ts";

const { values } = parseArgs({
  options: {
    blas: { type: "string", default: "auto,off" }, threads: { type: "string" },
    steps: { type: "string", default: "60" }, warmup: { type: "string", default: "10" },
  },
});

const text = await readFile(join(import.meta.dir, "..", "..", "data", "tinyshakespeare.txt"), "utf8");
const tokenizer = CharTokenizer.fromText(text);
const data = new TokenDataset(Int32Array.from(tokenizer.encode(text)), 64);
const args = TrainArgs.parse({});

/** Variants are separated by ";" (by "," too when none has split settings: "auto,off"). */
function blasList(s: string): string[] {
  return s.split(s.includes(":") ? ";" : /[;,]/);
}

const splitDefaults = { ...matmulSplit };
const variants = await Promise.all(blasList(values.blas ?? "").map(async (spec) => {
  const [blas, settings = ""] = spec.split(":");
  const split: Record<string, number> = { ...splitDefaults };
  let perParamAdamw = false, splitQkv = false;
  for (const kv of settings.split(",").filter(Boolean)) {
    const [k, x] = kv.split("=");
    if (k === "splitQkv") {
      splitQkv = x === "1";
      continue;
    }
    if (k === "perParamAdamw") {
      perParamAdamw = x === "1";
      continue;
    }
    if (!(k in splitDefaults)) throw new Error(`unknown matmul split key ${k}: ${Object.keys(splitDefaults).join(", ")}`);
    split[k] = Number(x);
  }
  const backend = await createComputeBackend("wasm", { blas, ...(values.threads ? { threads: Number(values.threads) } : {}) });
  useBackend(backend);
  seed(1337);
  const model = new GPT({ vocabSize: tokenizer.vocabSize, blockSize: 64, nLayer: 4, nHead: 4, nEmbd: 128 });
  const group = backend.runGroup?.bind(backend);
  if (perParamAdamw && group) {
    backend.runGroup = (launches) => {
      if (!launches.every((l) => l.kernel === "adamw")) return group(launches);
      for (const l of launches) backend.run(l.kernel, l.inputs, l.outputs, l.params as never);
    };
  }
  return { blas: spec, split, splitQkv, backend, model, optimizer: defaultOptimizer(model, args), rng: new Rng(1), ms: [] as number[], loss: NaN };
}));

function step(v: (typeof variants)[number]): number {
  useBackend(v.backend);
  Object.assign(matmulSplit, v.split);
  gptAttention.packedQkv = !v.splitQkv;
  const t0 = performance.now();
  v.loss = scope(() => {
    const batch = data.batch("train", 12, v.rng);
    const loss = v.model.loss(batch.x, batch.y);
    loss.backward();
    v.optimizer.step({ gradNormSq: gradNormSq(v.optimizer.params), maxNorm: 1 });
    v.optimizer.zeroGrad();
    return loss.dataSync()[0];
  });
  return performance.now() - t0;
}

const steps = Number(values.steps), warmup = Number(values.warmup);
const ratios: number[][] = variants.map(() => []);
for (let s = 0; s < warmup + steps; s++) {
  const order = s % 2 ? [...variants].reverse() : variants; // who goes first alternates too
  const t = new Map(order.map((v) => [v, step(v)]));
  if (s < warmup) continue;
  variants.forEach((v, i) => {
    v.ms.push(t.get(v)!);
    ratios[i].push(t.get(v)! / t.get(variants[0])!);
  });
}

const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
for (const [i, v] of variants.entries()) {
  console.log(
    `${v.blas.padEnd(6)}\n    ${v.backend.device.padEnd(44)} median ${q(v.ms, 0.5).toFixed(1)} ms/step (p10 ${q(v.ms, 0.1).toFixed(1)}, p90 ${q(v.ms, 0.9).toFixed(1)})` +
      `  ratio to ${variants[0].blas}: ${q(ratios[i], 0.5).toFixed(3)}  loss ${v.loss.toFixed(4)}`,
  );
}
process.exit(0);
