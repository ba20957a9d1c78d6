// LoRA SFT step speed and memory, the configuration of shared/bench/torch/lora.py (its README has
// the PyTorch figures on this machine): a ~125M-parameter Llama-shaped model (hidden 768, 12 layers,
// 12 heads / 4 kv, SwiGLU 2048, vocab 32000, untied head, no biases), LoRA r 8, alpha 16, dropout
// 0.05 on q,v (lora_sft/qv) or on all seven projections (lora_sft/all), batch 4 x 256 random tokens
// with labels -100 on the first 128 positions, one step = forward, masked cross-entropy, backward,
// clip to 1.0, AdamW on the adapters. Timed: 3 warm-up steps, then the median of `steps`.
// `--dtype bf16` (lora.py's `--dtype bf16`): the weight matrices are a frozen bf16 base, built
// 16-bit (never f32) and filled with bf16 normals; norms, adapters and optimizer state f32. Peak RSS
// is the process's high-water mark: run one configuration per process when comparing it.
// Run: `npx bun tests/bench/lora.bench.ts [--steps 8] [--filter qv] [--dtype bf16]`, or benchLora() from main.ts.

import { parseArgs } from "node:util";
import type { Backend } from "../../src/backend/backend.ts";
import { createComputeBackend } from "../../src/backend/registry.ts";
import { parseModelConfig, type LlamaConfig } from "../../src/models/config.ts";
import { LlamaForCausalLM } from "../../src/models/llama.ts";
import { fromArray, withBackend, withoutInit, type Tensor } from "../../src/tensor/tensor.ts";
import { f32ArrayToBf16 } from "../../src/tensor/half.ts";
import { scope } from "../../src/tensor/memory.ts";
import { Rng, seed } from "../../src/tensor/random.ts";
import { AdamW } from "../../src/optim/adamw.ts";
import { gradNormSq } from "../../src/optim/clip.ts";
import { applyLora } from "../../src/nn/lora_model.ts";
import { maskedCrossEntropy, shiftLabels } from "../../src/train/losses.ts";

export interface LoraFigure {
  name: string;
  backend: string;
  device: string;
  [key: string]: number | string;
}

const TARGETS = { qv: ["q_proj", "v_proj"], all: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] };

export async function benchLora(backend: Backend, { label = backend.name, wanted = () => true, steps = 8, dtype = "f32" }: { label?: string; wanted?: (name: string) => boolean; steps?: number; dtype?: "f32" | "bf16" } = {}): Promise<LoraFigure[]> {
  const out: LoraFigure[] = [];
  for (const [key, targets] of Object.entries(TARGETS)) {
    const name = `lora_sft/${key}${dtype === "bf16" ? "/bf16" : ""}`;
    if (!wanted(name)) continue;
    out.push(await withBackend(backend, () => run(backend, label, name, targets, steps, dtype)));
  }
  return out;
}

/** A frozen bf16 base: built 16-bit, matrices filled with N(0, 0.02) in bf16 (in 1M-element chunks), norms with 1. */
function bf16Model(config: LlamaConfig, backend: Backend): LlamaForCausalLM {
  const model = withoutInit(() => new LlamaForCausalLM(config, backend), { matrices: "bf16" });
  const rng = new Rng(2);
  const chunk = new Float32Array(1 << 20);
  for (const p of model.parameters() as Tensor[]) {
    if (p.dtype === "f32") {
      backend.run("fill", [], [p.storage.buffer], { n: p.size, value: 1 });
      continue;
    }
    for (let i = 0; i < p.size; i += chunk.length) {
      const part = chunk.subarray(0, Math.min(chunk.length, p.size - i));
      rng.fillNormal(part, 0, 0.02);
      backend.upload(p.storage.buffer, f32ArrayToBf16(part), 2 * i);
    }
  }
  return model;
}

async function run(backend: Backend, label: string, name: string, targets: string[], steps: number, dtype: "f32" | "bf16"): Promise<LoraFigure> {
  seed(0);
  const config = parseModelConfig({
    architectures: ["LlamaForCausalLM"], model_type: "llama", vocab_size: 32000, hidden_size: 768, intermediate_size: 2048,
    num_hidden_layers: 12, num_attention_heads: 12, num_key_value_heads: 4, max_position_embeddings: 256, rms_norm_eps: 1e-6,
    rope_theta: 10000, tie_word_embeddings: false,
  }) as LlamaConfig;
  const model = dtype === "bf16" ? bf16Model(config, backend) : new LlamaForCausalLM(config, backend);
  applyLora(model, { r: 8, loraAlpha: 16, loraDropout: 0.05, targetModules: targets });
  model.train();
  const params = model.trainableParameters();
  const opt = new AdamW(params, { lr: 3e-4, weightDecay: 0 });
  const B = 4, T = 256;
  const rng = new Rng(1);
  const ids = Int32Array.from({ length: B * T }, () => rng.int(32000));
  const labels = Int32Array.from(ids, (t, i) => (i % T < T / 2 ? -100 : t));
  const x = fromArray(ids, [B, T], { dtype: "i32", backend });
  const y = fromArray(shiftLabels(labels, B, T), [B, T], { dtype: "i32", backend });
  const step = async () => {
    const loss = scope(() => {
      const l = maskedCrossEntropy(model.forward(x), y);
      l.backward();
      opt.step({ gradNormSq: gradNormSq(params), maxNorm: 1 });
      opt.zeroGrad();
      return l.detach();
    });
    await loss.item();
    loss.dispose();
  };
  for (let i = 0; i < 3; i++) await step();
  backend.resetPeak();
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await step();
    times.push(performance.now() - t0);
  }
  const ms = [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)];
  const stats = backend.stats();
  const f: LoraFigure = {
    name, backend: label, device: backend.device, params_m: +(model.numParameters() / 1e6).toFixed(1),
    trainable: params.reduce((n, p) => n + p.size, 0), ms_per_step: Math.round(ms), tokens_per_s: Math.round((B * T * 1000) / ms),
    peak_backend_mb: Math.round(stats.peakBytes / 2 ** 20), peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
    weights_mb: Math.round(model.parameters().reduce((n, p) => n + p.storage.buffer.bytes, 0) / 2 ** 20),
  };
  x.dispose();
  y.dispose();
  model.dispose();
  opt.dispose?.();
  return f;
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { steps: { type: "string", default: "8" }, filter: { type: "string" }, backend: { type: "string", default: "wasm" }, json: { type: "boolean" }, dtype: { type: "string", default: "f32" } } });
  if (values.dtype !== "f32" && values.dtype !== "bf16") throw new Error(`--dtype must be f32 or bf16, got ${values.dtype}`);
  const backend = await createComputeBackend(values.backend!, values.backend === "webgpu" ? { device: "cpu" } : {});
  for (const f of await benchLora(backend, { steps: Number(values.steps), dtype: values.dtype, wanted: (n) => !values.filter || n.includes(values.filter) })) {
    console.log(values.json ? JSON.stringify(f) : `${f.name} [${f.backend}] ${Object.entries(f).filter(([k]) => !["name", "backend"].includes(k)).map(([k, v]) => `${k}=${v}`).join(" ")}`);
  }
  backend.dispose();
}
