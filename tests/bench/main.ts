// `bun run bench`: kiln's speed figures, as a table and (--json) one JSON object per line.
//   matmul/<shape>      GFLOP/s of the matmul kernel (median of timed reps), per backend and thread count; with a
//                       native BLAS (KILN_BLAS) also wasm/noblas: the wasm kernels alone
//   train_step/baby     ms/iter (median; p10 and p90 of the steps), tokens/s, peak RSS and peak backend memory of a full
//                       training step of the default baby GPT (4 layers, 4 heads, 128 wide, context 64, batch 12)
//   train_step/shakespeare_char, matmul/4096
//                       GPU-sized (nanoGPT's shakespeare_char: 6 layers, 6 heads, 384 wide, context 256,
//                       batch 64): run on a GPU adapter, on a CPU only when --filter names them
//   generate/<model>    prefill and decode tokens/s (tiny Llama fixture, ~100M random Llama)
//   engine_overhead/baby  ms/step of the baby GPT through a bare loop, the Trainer and GenericTrainer (profiling on)
//   load/llama-1gb      loadPretrained of a 1 GB F32 Llama folder: GB/s, peak RSS / weight bytes
//   lora_sft/qv, /all   LoRA SFT step of a 125M Llama (shared/bench/torch/lora.py's setup): tokens/s, peak
//                       memory; tens of seconds a step on a CPU, so only when --filter names them (lora_sft/)
//   memory/lm_head/*, memory/checkpoint   peak backend memory of an SFT step with and without the chunked LM
//                       head (vocab 151,936) and gradient checkpointing (2048 tokens): only when --filter names them
// Options: --filter <substring>  --backend wasm|webgpu|all  --json  --steps <n>  --reps <n>
// Timings are medians; never assert them in tests. Compare runs as ratios on one machine.

import { parseArgs } from "node:util";
import type { Backend } from "../../src/backend/backend.ts";
import { createComputeBackend } from "../../src/backend/registry.ts";
import { blasSetting, findBlas } from "../../src/backend/wasm/blas.ts";
import { GPT } from "../../src/models/gpt.ts";
import { useBackend } from "../../src/tensor/tensor.ts";
import { seed } from "../../src/tensor/random.ts";
import { Rng } from "../../src/tensor/random.ts";
import { Trainer } from "../../src/train/trainer.ts";
import { TokenDataset } from "../../src/data/dataset.ts";
import { CharTokenizer } from "../../src/data/tokenizer.ts";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { benchGenerate } from "./generate.bench.ts";
import { benchLoad } from "./load.bench.ts";
import { benchEngineOverhead } from "./engine.bench.ts";
import { benchLora } from "./lora.bench.ts";
import { benchMemory } from "./memory.bench.ts";

const { values } = parseArgs({
  options: {
    filter: { type: "string" }, backend: { type: "string", default: "all" }, json: { type: "boolean" },
    steps: { type: "string", default: "30" }, reps: { type: "string", default: "15" },
  },
});

interface Figure {
  name: string;
  backend: string;
  device: string;
  [key: string]: number | string;
}
const figures: Figure[] = [];
const wanted = (name: string) => !values.filter || name.includes(values.filter);
/** figures sized for a GPU run on a CPU only when --filter names them */
const named = (name: string) => !!values.filter && name.includes(values.filter) && values.filter.includes("/");
const onGpu = (backend: Backend) => backend.name === "webgpu" && !/\bcpu\b/.test(backend.device);
const emit = (f: Figure) => {
  figures.push(f);
  if (values.json) console.log(JSON.stringify(f));
  else console.error(`  ${f.name} [${f.backend}] ${Object.entries(f).filter(([k]) => !["name", "backend", "device"].includes(k)).map(([k, v]) => `${k}=${v}`).join(" ")}`);
};

/** The q-quantile of xs (nearest rank): the spread of step times on a shared machine. */
function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

// ---- matmul ----
const MATMUL_SHAPES: { name: string; M: number; N: number; K: number; transA?: boolean; transB?: boolean; gpuOnly?: boolean }[] = [
  { name: "512", M: 512, N: 512, K: 512 },
  { name: "1024", M: 1024, N: 1024, K: 1024 },
  { name: "4096", M: 4096, N: 4096, K: 4096, gpuOnly: true }, // issue target: vs torch.mm fp32 on the same GPU
  { name: "768x128x384", M: 768, N: 384, K: 128 }, // qkv projection
  { name: "768x128x512", M: 768, N: 512, K: 128 }, // mlp up
  { name: "768x512x128", M: 768, N: 128, K: 512 }, // mlp down
  { name: "768x128x65", M: 768, N: 65, K: 128 }, // lm head (odd N)
  { name: "768x384x128_tB", M: 768, N: 128, K: 384, transB: true }, // dx = dout·Wᵀ
  { name: "128x768x384_tA", M: 128, N: 384, K: 768, transA: true }, // dW = xᵀ·dout
];

async function benchMatmul(backend: Backend, label: string): Promise<void> {
  const reps = Number(values.reps);
  for (const s of MATMUL_SHAPES) {
    const name = `matmul/${s.name}`;
    if (!wanted(name) || (s.gpuOnly && !onGpu(backend) && !named(name))) continue;
    const rng = new Rng(1);
    const fill = (n: number) => {
      const a = new Float32Array(n);
      for (let i = 0; i < n; i++) a[i] = rng.next() - 0.5;
      return a;
    };
    const a = backend.alloc(s.M * s.K * 4);
    const b = backend.alloc(s.K * s.N * 4);
    const out = backend.alloc(s.M * s.N * 4);
    backend.upload(a, fill(s.M * s.K));
    backend.upload(b, fill(s.K * s.N));
    const params = { batch: 1, M: s.M, N: s.N, K: s.K, transA: s.transA ? 1 : 0, transB: s.transB ? 1 : 0, strideA: 0, strideB: 0, hasBias: 0 };
    // inner repetitions so one timed sample is >= ~20 ms
    const flops = 2 * s.M * s.N * s.K;
    let inner = 1;
    for (let i = 0; i < 3; i++) backend.run("matmul", [a, b, null], [out], params);
    await backend.flush();
    const t0 = performance.now();
    backend.run("matmul", [a, b, null], [out], params);
    await backend.flush();
    inner = Math.max(1, Math.ceil(20 / Math.max(performance.now() - t0, 0.01)));
    const samples: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t = performance.now();
      for (let i = 0; i < inner; i++) backend.run("matmul", [a, b, null], [out], params);
      await backend.flush();
      samples.push((performance.now() - t) / inner);
    }
    const ms = median(samples);
    emit({ name, backend: label, device: backend.device, gflops: +((flops / (ms * 1e-3)) / 1e9).toFixed(2), ms: +ms.toFixed(4) });
    for (const buf of [a, b, out]) backend.free(buf);
  }
}

// ---- training step ----
/** The training configurations: nanoGPT's CPU "baby GPT", and its shakespeare_char config (GPU-sized). */
const TRAIN_CONFIGS = [
  { name: "train_step/baby", nLayer: 4, nHead: 4, nEmbd: 128, blockSize: 64, batchSize: 12, gpuOnly: false },
  { name: "train_step/shakespeare_char", nLayer: 6, nHead: 6, nEmbd: 384, blockSize: 256, batchSize: 64, gpuOnly: true },
] as const;

async function benchTrainSteps(backend: Backend, label: string): Promise<void> {
  for (const cfg of TRAIN_CONFIGS) {
    if (!wanted(cfg.name) || (cfg.gpuOnly && !onGpu(backend) && !named(cfg.name))) continue;
    await benchTrainStep(backend, label, cfg);
  }
}

async function benchTrainStep(backend: Backend, label: string, cfg: (typeof TRAIN_CONFIGS)[number]): Promise<void> {
  const { name, nLayer, nHead, nEmbd, blockSize, batchSize } = cfg;
  useBackend(backend);
  const text = await readFile(join(import.meta.dir, "..", "..", "data", "tinyshakespeare.txt"), "utf8");
  const tokenizer = CharTokenizer.fromText(text);
  const data = new TokenDataset(Int32Array.from(tokenizer.encode(text)), blockSize);
  seed(1337);
  const model = new GPT({ vocabSize: tokenizer.vocabSize, blockSize, nLayer, nHead, nEmbd });
  const steps = Number(values.steps);
  const samples: number[] = [];
  const phases: Record<string, number[]> = { forward: [], backward: [], optimizer: [] };
  let last = performance.now();
  const warmup = 10; // as the PyTorch and TF.js harnesses (../shared/bench): JIT tier-up and caches settle first
  const trainer = new Trainer({
    model, data, progress: false, outDir: null,
    args: { iters: steps + warmup, batchSize, evalInterval: 0, finalEvalIters: 1, logInterval: 1 },
    hooks: [{
      onBatchEnd: (_trainer, _batch, { step }) => {
        const now = performance.now();
        if (step > warmup) samples.push(now - last);
        last = now;
      },
    }],
  });
  const result = await trainer.fit();
  for (const r of trainer.metrics.records.slice(warmup)) {
    const key = (p: string) => `profile/train/dl_train/time_${p}_ms`;
    if (typeof r[key("forward")] === "number") {
      phases.forward.push(r[key("forward")] as number);
      phases.backward.push(r[key("backward")] as number);
      phases.optimizer.push(r[key("optimizer")] as number);
    }
  }
  const ms = median(samples);
  emit({
    name, backend: label, device: backend.device,
    ms_per_iter: +ms.toFixed(2), ms_p10: +quantile(samples, 0.1).toFixed(2), ms_p90: +quantile(samples, 0.9).toFixed(2),
    tokens_per_s: Math.round((batchSize * blockSize * 1000) / ms),
    ms_forward: +median(phases.forward).toFixed(2), ms_backward: +median(phases.backward).toFixed(2), ms_optimizer: +median(phases.optimizer).toFixed(2),
    peak_rss_mb: Math.round(process.memoryUsage().rss / 2 ** 20), peak_device_mb: Math.round(backend.stats().peakBytes / 2 ** 20),
    loss: +result.finalLoss.toFixed(4),
  });
  model.dispose();
  trainer.optimizer.dispose();
}

async function benchOverhead(backend: Backend, label: string): Promise<void> {
  if (!wanted("engine_overhead/baby")) return;
  const text = await readFile(join(import.meta.dir, "..", "..", "data", "tinyshakespeare.txt"), "utf8");
  const tokenizer = CharTokenizer.fromText(text);
  const data = new TokenDataset(Int32Array.from(tokenizer.encode(text)), 64);
  emit({ name: "engine_overhead/baby", backend: label, device: backend.device, ...(await benchEngineOverhead(backend, data, tokenizer.vocabSize)) });
}

// ---- run ----
const runs: { label: string; make: () => Promise<Backend> }[] = [];
if (values.backend === "all" || values.backend === "wasm") {
  runs.push({ label: "wasm", make: () => createComputeBackend("wasm") });
  runs.push({ label: "wasm/1t", make: () => createComputeBackend("wasm", { threads: 1 }) });
  // where a native BLAS runs the matmuls (KILN_BLAS), the same figures without it
  if (await findBlas(blasSetting())) {
    runs.push({ label: "wasm/noblas", make: () => createComputeBackend("wasm", { blas: "off" }) });
    runs.push({ label: "wasm/noblas/1t", make: () => createComputeBackend("wasm", { blas: "off", threads: 1 }) });
  }
}
if (values.backend === "all" || values.backend === "webgpu") {
  runs.push({ label: "webgpu", make: () => createComputeBackend("webgpu", { device: "cpu" }) });
}
for (const r of runs) {
  let backend: Backend;
  try {
    backend = await r.make();
  } catch (e) {
    if (values.backend !== "all") throw e;
    console.error(`(skipping ${r.label}: ${(e as Error).message})`);
    continue;
  }
  console.error(`${r.label}: ${backend.device}`);
  await benchMatmul(backend, r.label);
  if (!r.label.endsWith("/1t")) await benchTrainSteps(backend, r.label);
  if (!r.label.endsWith("/1t") && !r.label.includes("noblas")) await benchOverhead(backend, r.label);
  // prefill/decode tokens/s (the 100M model is too slow for a software WebGPU adapter)
  if (r.label === "wasm" || r.label === "wasm/noblas") for (const f of await benchGenerate(backend, { label: r.label, wanted })) emit(f as Figure);
  if (!r.label.endsWith("/1t") && named("lora_sft/")) for (const f of await benchLora(backend, { label: r.label, wanted, steps: Math.min(Number(values.steps), 8) })) emit(f as Figure);
  // peak memory of chunked LM head / checkpointing against the plain step: seconds a step, so only when named
  if (r.label === "wasm" && named("memory/")) for (const f of await benchMemory(backend, { label: r.label, wanted, steps: 3 })) emit(f as Figure);
  // loadPretrained of a ~1 GB F32 Llama-layout folder, in a child process (its own peak RSS)
  if (r.label === "wasm" && wanted("load/llama-1gb")) {
    const f = await benchLoad({ dtype: "F32", backend: "wasm" });
    emit({
      name: "load/llama-1gb", backend: r.label, device: backend.device, file_gb: +(f.fileBytes / 1e9).toFixed(3),
      load_s: +f.loadSeconds.toFixed(2), copy_gb_per_s: +f.copyGBps.toFixed(2), end_to_end_gb_per_s: +f.endToEndGBps.toFixed(2),
      peak_rss_mb: Math.round(f.peakRssBytes / 2 ** 20), peak_over_weights: +f.peakOverWeights.toFixed(2),
    });
  }
  backend.dispose();
}

if (!values.json) {
  const keys = [...new Set(figures.flatMap((f) => Object.keys(f)))].filter((k) => !["name", "backend", "device"].includes(k));
  const header = ["figure", "backend", ...keys];
  const rows = figures.map((f) => [f.name, f.backend, ...keys.map((k) => (f[k] === undefined ? "" : String(f[k])))]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => "| " + cells.map((c, i) => c.padEnd(widths[i])).join(" | ") + " |";
  console.log(line(header));
  console.log("|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|");
  for (const r of rows) console.log(line(r));
  console.log("\n" + figures.map((f) => JSON.stringify(f)).join("\n"));
}
process.exit(0);
