// Does a 1B model fine-tune inside wasm32's 4 GiB? A synthesised Hugging Face folder shaped like
// Llama-3.2-1B (hidden 2048, 16 layers, 32 heads / 8 kv, SwiGLU 8192, vocab 128256, tied head;
// 1.24B parameters, 2.47 GB of BF16 random normals: in f32 it would be 4.9 GB, past wasm32's limit)
// is loaded on wasm with a bfloat16 base (createBackend dtype), then one LoRA SFT step runs (r 8 on
// q,v, batch 1 × `--seq` tokens, prompt half masked, clip 1.0, AdamW). Prints the backend's memory
// (after load, the step's peak), the process's peak RSS and the times. The loss is the model's chunked
// LM head (never the [T, 128256] logits); `--checkpoint` turns on gradient checkpointing (needed
// past a few hundred tokens: each layer keeps ~0.2 MB of activations per token otherwise).
// Run: `npx bun tests/bench/llama1b.bench.ts [--dir /tmp/kiln-llama1b-bf16] [--seq 64] [--steps 2] [--checkpoint]`
// (the folder is written on the first run and reused).

import { closeSync, existsSync, mkdirSync, openSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createBackend } from "../../src/finetune/backend.ts";
import { applyLora } from "../../src/nn/lora_model.ts";
import { AdamW } from "../../src/optim/adamw.ts";
import { gradNormSq } from "../../src/optim/clip.ts";
import { fromArray, withBackend, type Tensor } from "../../src/tensor/tensor.ts";
import { scope } from "../../src/tensor/memory.ts";
import { Rng } from "../../src/tensor/random.ts";
import { f32ArrayToBf16 } from "../../src/tensor/half.ts";
import { shiftLabels } from "../../src/train/losses.ts";

const H = 2048, LAYERS = 16, HEADS = 32, KV = 8, HEAD_DIM = 64, I = 8192, V = 128256;

const CONFIG = {
  architectures: ["LlamaForCausalLM"], model_type: "llama", hidden_size: H, intermediate_size: I, num_hidden_layers: LAYERS,
  num_attention_heads: HEADS, num_key_value_heads: KV, head_dim: HEAD_DIM, vocab_size: V, max_position_embeddings: 2048,
  rms_norm_eps: 1e-5, rope_theta: 500000, tie_word_embeddings: true, hidden_act: "silu", torch_dtype: "bfloat16",
  bos_token_id: 128000, eos_token_id: 128001,
};

/** [name, shape] of every tensor of the checkpoint, in file order. */
function tensors(): [string, number[]][] {
  const out: [string, number[]][] = [["model.embed_tokens.weight", [V, H]]];
  for (let l = 0; l < LAYERS; l++) {
    const p = `model.layers.${l}.`;
    out.push(
      [`${p}input_layernorm.weight`, [H]], [`${p}self_attn.q_proj.weight`, [HEADS * HEAD_DIM, H]], [`${p}self_attn.k_proj.weight`, [KV * HEAD_DIM, H]],
      [`${p}self_attn.v_proj.weight`, [KV * HEAD_DIM, H]], [`${p}self_attn.o_proj.weight`, [H, HEADS * HEAD_DIM]], [`${p}post_attention_layernorm.weight`, [H]],
      [`${p}mlp.gate_proj.weight`, [I, H]], [`${p}mlp.up_proj.weight`, [I, H]], [`${p}mlp.down_proj.weight`, [H, I]],
    );
  }
  out.push(["model.norm.weight", [H]]);
  return out;
}

/** Writes config.json and a BF16 model.safetensors: matrices N(0, 0.02) (a random block, repeated at shifting offsets), norms 1. */
function writeFolder(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify(CONFIG, null, 2));
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let offset = 0;
  for (const [name, shape] of tensors()) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 2;
    header[name] = { dtype: "BF16", shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const fd = openSync(join(dir, "model.safetensors.partial"), "w");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeSync(fd, len);
  writeSync(fd, json);
  const block = new Float32Array(1 << 23);
  new Rng(5).fillNormal(block, 0, 0.02);
  const bits = f32ArrayToBf16(block);
  const ones = new Uint16Array(H).fill(0x3f80);
  let shift = 0;
  for (const [, shape] of tensors()) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (shape.length === 1) {
      writeSync(fd, ones);
      continue;
    }
    for (let i = 0; i < n; ) {
      const start = (shift = (shift + 7919) % (bits.length - 4096));
      const m = Math.min(n - i, bits.length - start);
      writeSync(fd, bits.subarray(start, start + m));
      i += m;
    }
  }
  closeSync(fd);
  require("node:fs").renameSync(join(dir, "model.safetensors.partial"), join(dir, "model.safetensors"));
}

const mb = (b: number) => Math.round(b / 2 ** 20);
const rss = () => Math.round(process.resourceUsage().maxRSS / 1024);

if (import.meta.main) {
  const { values } = parseArgs({ options: { dir: { type: "string", default: "/tmp/kiln-llama1b-bf16" }, seq: { type: "string", default: "64" }, steps: { type: "string", default: "2" }, threads: { type: "string" }, checkpoint: { type: "boolean" } } });
  const dir = values.dir!;
  const T = Number(values.seq), steps = Number(values.steps);
  if (!existsSync(join(dir, "model.safetensors"))) {
    const t0 = performance.now();
    writeFolder(dir);
    console.log(`wrote ${dir} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const backend = await createBackend("wasm", { dtype: "bfloat16", seed: 0, ...(values.threads ? { device: values.threads } : {}) });
  const compute = backend.compute;
  let t0 = performance.now();
  const model = await backend.loadModel(dir);
  const loadS = (performance.now() - t0) / 1000;
  const afterLoad = compute.stats();
  console.log(`loaded on ${compute.device} in ${loadS.toFixed(1)} s: ${model.module.numParameters().toLocaleString("en-US")} parameters, backend ${mb(afterLoad.allocatedBytes)} MiB allocated, peak RSS ${rss()} MiB`);
  const m = model.module as typeof model.module & { gradientCheckpointing: boolean; loss(ids: Tensor, targets: Tensor): Tensor };
  m.gradientCheckpointing = values.checkpoint === true;
  applyLora(m, { r: 8, loraAlpha: 16, loraDropout: 0.05, targetModules: ["q_proj", "v_proj"] });
  m.train();
  const params = m.trainableParameters();
  const opt = new AdamW(params, { lr: 1e-4, weightDecay: 0 });
  const rng = new Rng(1);
  const ids = Int32Array.from({ length: T }, () => rng.int(V));
  const labels = Int32Array.from(ids, (t, i) => (i < T / 2 ? -100 : t));
  const x = fromArray(ids, [1, T], { dtype: "i32", backend: compute });
  const y = fromArray(shiftLabels(labels, 1, T), [1, T], { dtype: "i32", backend: compute });
  compute.resetPeak();
  for (let s = 0; s < steps; s++) {
    t0 = performance.now();
    const loss = await withBackend(compute, () => scope(() => {
      const l = m.loss(x, y);
      l.backward();
      opt.step({ gradNormSq: gradNormSq(params), maxNorm: 1 });
      opt.zeroGrad();
      return l.detach();
    }).item());
    const st = compute.stats();
    console.log(`step ${s + 1}: loss ${loss.toFixed(4)} in ${((performance.now() - t0) / 1000).toFixed(1)} s; backend peak ${mb(st.peakBytes)} MiB (${(st.peakBytes / 2 ** 30).toFixed(2)} GiB of wasm32's 4 GiB), allocated ${mb(st.allocatedBytes)} MiB, pooled ${mb(st.pooledBytes)} MiB; peak RSS ${rss()} MiB`);
  }
  console.log(`trainable ${params.reduce((n, p) => n + p.size, 0).toLocaleString("en-US")} (LoRA r 8 on q,v), sequence ${T}${m.gradientCheckpointing ? ", gradient checkpointing" : ""}`);
  compute.dispose();
}
