// The same short SFT run on two backends (wasm and WebGPU by default): one implementation on every
// backend, verified numerically — losses step by step and the trained adapters must agree within
// a tolerance (1e-4), or the report says where they part. `kiln compare-backends` prints it.

import { createBackend } from "./backend.ts";
import { adapterParameters } from "../nn/lora_model.ts";

export interface CompareOptions {
  model: string;
  backends?: [string, string];
  /** SFT rows (default: a few prompt/completion rows) */
  data?: unknown[];
  steps?: number;
  /** tolerance on losses and adapter weights (absolute, relative to max(1, |value|)) */
  tolerance?: number;
  device?: Record<string, string>;
}

export interface CompareReport {
  backends: [string, string];
  devices: [string, string];
  losses: [number[], number[]];
  maxLossDiff: number;
  maxAdapterDiff: number;
  ok: boolean;
}

const DEFAULT_ROWS = [
  { prompt: "The capital of France is", completion: " Paris." },
  { prompt: "The capital of Italy is", completion: " Rome." },
  { prompt: "The capital of Spain is", completion: " Madrid." },
  { prompt: "One, two,", completion: " three." },
];

export async function compareBackends({ model, backends = ["wasm", "webgpu"], data = DEFAULT_ROWS, steps = 5, tolerance = 1e-4, device = {} }: CompareOptions): Promise<CompareReport> {
  const runs = [];
  for (const name of backends) {
    const backend = await createBackend(name, { seed: 1234, device: device[name] ?? (name === "webgpu" ? "cpu" : "auto") });
    const m = await backend.loadModel(model);
    const sft = backend.createSftTrainer(m, { learning_rate: 5e-3, max_steps: steps, per_device_batch_size: 2, lora_r: 4, lora_alpha: 8, lora_dropout: 0, target_modules: "all-linear", lr_scheduler_type: "constant", progress: false, seed: 7 });
    const r = await sft.train(data);
    if (!r.success) throw new Error(`[compare] SFT on ${name} failed: ${r.error_message}`);
    const weights = new Map<string, Float32Array>();
    for (const [n, p] of adapterParameters(m.module)) weights.set(n, (await p.data()) as Float32Array);
    runs.push({ name: backend.name, device: backend.compute.device, losses: r.lossHistory ?? [], weights });
    m.module.dispose();
  }
  const [a, b] = runs;
  let maxLossDiff = 0, maxAdapterDiff = 0;
  a.losses.forEach((l, i) => (maxLossDiff = Math.max(maxLossDiff, Math.abs(l - b.losses[i]) / Math.max(1, Math.abs(l)))));
  for (const [n, wa] of a.weights) {
    const wb = b.weights.get(n)!;
    for (let i = 0; i < wa.length; i++) maxAdapterDiff = Math.max(maxAdapterDiff, Math.abs(wa[i] - wb[i]) / Math.max(1, Math.abs(wa[i])));
  }
  return {
    backends: [a.name, b.name], devices: [a.device, b.device], losses: [a.losses, b.losses], maxLossDiff, maxAdapterDiff,
    ok: a.losses.length === b.losses.length && maxLossDiff <= tolerance && maxAdapterDiff <= tolerance,
  };
}
