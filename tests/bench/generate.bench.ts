// Generation speed: prefill tokens/s (one batched pass over a 128-token prompt, filling the KV
// cache) and decode tokens/s (128 new tokens, one forward pass each) of generate(), greedy, for
//   generate/llama-tiny   the tests/fixtures/hf/llama model (2 layers, hidden 64, vocab 300)
//   generate/llama-100m   a random Llama built in memory: hidden 768, 12 layers, 12 heads / 4 kv,
//                         intermediate 2048, vocab 32000, tied head (~100M parameters)
// Run: `npx bun tests/bench/generate.bench.ts [--json] [--backend wasm|webgpu] [--filter s]`, or
// import benchGenerate() from tests/bench/main.ts. Timings are medians; never assert them in tests.

import { parseArgs } from "node:util";
import { join } from "node:path";
import type { Backend } from "../../src/backend/backend.ts";
import { createComputeBackend } from "../../src/backend/registry.ts";
import { parseModelConfig, type LlamaConfig } from "../../src/models/config.ts";
import { LlamaForCausalLM } from "../../src/models/llama.ts";
import { generate } from "../../src/models/generate.ts";
import { readSafetensors } from "../../src/io/safetensors.ts";
import { useBackend } from "../../src/tensor/tensor.ts";
import { Rng, seed } from "../../src/tensor/random.ts";

export interface GenerateFigure {
  name: string;
  backend: string;
  device: string;
  prompt_tokens: number;
  new_tokens: number;
  params_m: number;
  prefill_tokens_per_s: number;
  decode_tokens_per_s: number;
  prefill_ms: number;
  decode_ms_per_token: number;
  [key: string]: number | string;
}

export interface GenerateBenchOptions {
  /** backend label in the figures (default backend.name) */
  label?: string;
  /** which figures to run (default all) */
  wanted?: (name: string) => boolean;
  promptTokens?: number;
  newTokens?: number;
  /** timed generate() calls per model (median taken); one untimed warm-up call precedes them */
  reps?: number;
}

const FIXTURE = join(import.meta.dir, "..", "fixtures", "hf", "llama");

/** ~100M-parameter Llama (HF config.json fields). */
export const LLAMA_100M = {
  architectures: ["LlamaForCausalLM"], model_type: "llama", vocab_size: 32000, hidden_size: 768, intermediate_size: 2048,
  num_hidden_layers: 12, num_attention_heads: 12, num_key_value_heads: 4, max_position_embeddings: 2048,
  rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: true,
};

/**
 * Prefill and decode tokens/s of generate() (greedy, KV cache) on `backend` for the tiny Llama
 * fixture and a random ~100M Llama. Returns one figure per model; tests/bench/main.ts can emit them.
 */
export async function benchGenerate(backend: Backend, options: GenerateBenchOptions = {}): Promise<GenerateFigure[]> {
  const { label = backend.name, wanted = () => true, promptTokens = 128, newTokens = 128, reps = 3 } = options;
  useBackend(backend);
  const figures: GenerateFigure[] = [];
  const models: { name: string; make: () => Promise<LlamaForCausalLM> }[] = [
    { name: "generate/llama-tiny", make: () => tinyLlama(backend, promptTokens + newTokens) },
    { name: "generate/llama-100m", make: async () => randomLlama(LLAMA_100M, backend) },
  ];
  for (const m of models) {
    if (!wanted(m.name)) continue;
    const model = await m.make();
    const rng = new Rng(3);
    const prompt = Array.from({ length: promptTokens }, () => rng.int(model.config.vocabSize));
    const opts = { maxNewTokens: newTokens, stopTokens: [], temperature: 0 };
    await generate(model, null, prompt, { ...opts, maxNewTokens: 4 }); // warm-up: pools, kernels, position tables
    const prefill: number[] = [];
    const decode: number[] = [];
    for (let r = 0; r < reps; r++) {
      const { timings: t } = await generate(model, null, prompt, opts);
      prefill.push(t.prefillMs / t.prefillTokens);
      decode.push(t.decodeMs / t.decodeTokens);
    }
    const prefillMsPerToken = median(prefill);
    const decodeMsPerToken = median(decode);
    figures.push({
      name: m.name, backend: label, device: backend.device,
      prompt_tokens: promptTokens, new_tokens: newTokens, params_m: +(model.numParameters() / 1e6).toFixed(1),
      prefill_tokens_per_s: +(1000 / prefillMsPerToken).toFixed(1),
      decode_tokens_per_s: +(1000 / decodeMsPerToken).toFixed(1),
      prefill_ms: +(prefillMsPerToken * promptTokens).toFixed(1),
      decode_ms_per_token: +decodeMsPerToken.toFixed(2),
    });
    model.dispose();
  }
  return figures;
}

/** The tests/fixtures/hf/llama weights; blockSize raised to fit the bench (RoPE has no position limit). */
async function tinyLlama(backend: Backend, positions: number): Promise<LlamaForCausalLM> {
  const config = parseModelConfig(await Bun.file(join(FIXTURE, "config.json")).json()) as LlamaConfig;
  const model = new LlamaForCausalLM({ ...config, blockSize: Math.max(config.blockSize, positions) }, backend);
  const file = await readSafetensors(join(FIXTURE, "model.safetensors"));
  const values = new Map<string, { shape: readonly number[]; data: Float32Array }>();
  for (const [name] of model.namedParameters()) values.set(name, { shape: file.info(name).shape, data: (await file.read(name)) as Float32Array });
  model.loadStateDict(values);
  return model;
}

/** A Llama with random weights (std 0.02) from an HF-style config object. */
function randomLlama(hfConfig: object, backend: Backend): LlamaForCausalLM {
  seed(1);
  return new LlamaForCausalLM(parseModelConfig(hfConfig) as LlamaConfig, backend);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      json: { type: "boolean" }, backend: { type: "string", default: "wasm" }, filter: { type: "string" },
      reps: { type: "string", default: "3" }, prompt: { type: "string", default: "128" }, new: { type: "string", default: "128" },
    },
  });
  const backend = await createComputeBackend(values.backend!, values.backend === "webgpu" ? { device: "cpu" } : {});
  console.error(`${backend.name}: ${backend.device}`);
  const figures = await benchGenerate(backend, {
    wanted: (n) => !values.filter || n.includes(values.filter),
    reps: Number(values.reps), promptTokens: Number(values.prompt), newTokens: Number(values.new),
  });
  backend.dispose();
  if (!values.json) {
    const keys = ["params_m", "prefill_tokens_per_s", "decode_tokens_per_s", "prefill_ms", "decode_ms_per_token"];
    const header = ["figure", "backend", ...keys];
    const rows = figures.map((f) => [f.name, f.backend, ...keys.map((k) => String(f[k]))]);
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const line = (cells: string[]) => "| " + cells.map((c, i) => c.padEnd(widths[i])).join(" | ") + " |";
    console.log(line(header));
    console.log("|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|");
    for (const r of rows) console.log(line(r));
    console.log("");
  }
  for (const f of figures) {
    const { name, backend: b, prefill_tokens_per_s, decode_tokens_per_s, ...rest } = f;
    console.log(JSON.stringify({ name, backend: b, prefill_tokens_per_s, decode_tokens_per_s, ...rest }));
  }
  process.exit(0);
}
