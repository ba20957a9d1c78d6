// Peak backend memory of one SFT step, with and without kiln's two memory savers:
//   memory/lm_head/{lora,full}   a tiny Llama with Qwen2.5's 151,936-token vocabulary (hidden 128,
//       2 layers, tied head), batch 1 x 512, half the labels masked: the loss from the [B, T, V]
//       logits (maskedCrossEntropy(model.forward)) against the chunked LM head (causalLmLoss, what
//       SftTrainer runs). lora: LoRA r 8 on q,v (head frozen); full: every weight trains (the tied
//       head's dW is accumulated chunk by chunk).
//   memory/checkpoint            a Llama of hidden 256, 4 layers, vocab 2048, batch 1 x 2048, LoRA r 8
//       on q,v with dropout 0.05: activations kept against gradientCheckpointing = true.
// Each figure: peak backend MB above what the model and batch hold, and ms per step (median of
// `steps` after one warm-up), for both settings. Timings are for comparing settings in one run.
// Run: `npx bun tests/bench/memory.bench.ts [--steps 3] [--filter lm_head] [--backend webgpu]`.

import { parseArgs } from "node:util";
import type { Backend } from "../../src/backend/backend.ts";
import { createComputeBackend } from "../../src/backend/registry.ts";
import { parseModelConfig, type LlamaConfig } from "../../src/models/config.ts";
import { LlamaForCausalLM } from "../../src/models/llama.ts";
import { fromArray, withBackend, type Tensor } from "../../src/tensor/tensor.ts";
import { scope } from "../../src/tensor/memory.ts";
import { Rng, seed } from "../../src/tensor/random.ts";
import { applyLora } from "../../src/nn/lora_model.ts";
import { causalLmLoss, maskedCrossEntropy, shiftLabels } from "../../src/train/losses.ts";

export interface MemoryFigure {
  name: string;
  backend: string;
  device: string;
  [key: string]: number | string;
}

interface Setup {
  hidden: number; layers: number; heads: number; kvHeads: number; intermediate: number; vocab: number; T: number;
  lora: boolean;
}

const SETUPS: Record<string, Setup> = {
  "memory/lm_head/lora": { hidden: 128, layers: 2, heads: 4, kvHeads: 2, intermediate: 256, vocab: 151936, T: 512, lora: true },
  "memory/lm_head/full": { hidden: 128, layers: 2, heads: 4, kvHeads: 2, intermediate: 256, vocab: 151936, T: 512, lora: false },
  "memory/checkpoint": { hidden: 256, layers: 4, heads: 8, kvHeads: 4, intermediate: 688, vocab: 2048, T: 2048, lora: true },
};

export async function benchMemory(backend: Backend, { label = backend.name, wanted = () => true, steps = 3 }: { label?: string; wanted?: (name: string) => boolean; steps?: number } = {}): Promise<MemoryFigure[]> {
  const out: MemoryFigure[] = [];
  for (const [name, setup] of Object.entries(SETUPS)) {
    if (!wanted(name)) continue;
    out.push(await withBackend(backend, () => run(backend, label, name, setup, steps)));
  }
  return out;
}

async function run(backend: Backend, label: string, name: string, s: Setup, steps: number): Promise<MemoryFigure> {
  seed(0);
  const config = parseModelConfig({
    architectures: ["LlamaForCausalLM"], model_type: "llama", vocab_size: s.vocab, hidden_size: s.hidden, intermediate_size: s.intermediate,
    num_hidden_layers: s.layers, num_attention_heads: s.heads, num_key_value_heads: s.kvHeads, max_position_embeddings: s.T, rms_norm_eps: 1e-6,
    rope_theta: 10000, tie_word_embeddings: true,
  }) as LlamaConfig;
  const model = new LlamaForCausalLM(config, backend);
  if (s.lora) applyLora(model, { r: 8, loraAlpha: 16, loraDropout: 0.05, targetModules: ["q_proj", "v_proj"] });
  model.train();
  const B = 1, T = s.T;
  const rng = new Rng(1);
  const ids = Int32Array.from({ length: B * T }, () => rng.int(s.vocab));
  const labels = Int32Array.from(ids, (t, i) => (i % T < T / 2 ? -100 : t));
  const x = fromArray(ids, [B, T], { dtype: "i32", backend });
  const y = fromArray(shiftLabels(labels, B, T), [B, T], { dtype: "i32", backend });
  const params = model.trainableParameters();
  /** peak MB above the resting state and median ms of a step (forward, loss, backward) */
  const measure = async (loss: (x: Tensor, y: Tensor) => Tensor): Promise<[number, number]> => {
    const step = async () => {
      const l = scope(() => {
        const v = loss(x, y);
        v.backward();
        return v.detach();
      });
      await l.item();
      l.dispose();
      for (const p of params) {
        p.grad?.dispose();
        p.grad = null;
      }
    };
    await step();
    await backend.flush();
    const base = backend.stats().allocatedBytes;
    backend.resetPeak();
    const times: number[] = [];
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      await step();
      times.push(performance.now() - t0);
    }
    const peak = backend.stats().peakBytes - base;
    return [Math.round(peak / 2 ** 20), Math.round([...times].sort((a, b) => a - b)[Math.floor(times.length / 2)])];
  };
  let f: MemoryFigure;
  if (name.startsWith("memory/checkpoint")) {
    model.gradientCheckpointing = false;
    const [keptMb, keptMs] = await measure((a, b) => causalLmLoss(model, a, b));
    model.gradientCheckpointing = true;
    const [ckptMb, ckptMs] = await measure((a, b) => causalLmLoss(model, a, b));
    f = { name, backend: label, device: backend.device, T, peak_mb_kept: keptMb, peak_mb_checkpointed: ckptMb, ms_kept: keptMs, ms_checkpointed: ckptMs };
  } else {
    const [logitsMb, logitsMs] = await measure((a, b) => maskedCrossEntropy(model.forward(a), b));
    const [chunkedMb, chunkedMs] = await measure((a, b) => causalLmLoss(model, a, b));
    f = { name, backend: label, device: backend.device, vocab: s.vocab, T, peak_mb_logits: logitsMb, peak_mb_chunked: chunkedMb, ms_logits: logitsMs, ms_chunked: chunkedMs };
  }
  x.dispose();
  y.dispose();
  model.dispose();
  return f;
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { steps: { type: "string", default: "3" }, filter: { type: "string" }, backend: { type: "string", default: "wasm" }, json: { type: "boolean" } } });
  const backend = await createComputeBackend(values.backend!, values.backend === "webgpu" ? { device: "cpu" } : {});
  for (const f of await benchMemory(backend, { steps: Number(values.steps), wanted: (n) => !values.filter || n.includes(values.filter) })) {
    console.log(values.json ? JSON.stringify(f) : `${f.name} [${f.backend}] ${Object.entries(f).filter(([k]) => !["name", "backend"].includes(k)).map(([k, v]) => `${k}=${v}`).join(" ")}`);
  }
  backend.dispose();
}
