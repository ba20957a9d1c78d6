// buildModel: a builder config's model section → a fresh kiln model of the GPT-2 or Llama family,
// through the model-family registry (the same HF config.json fields a saved model carries).

import type { Backend } from "../backend/backend.ts";
import { createModel, familyByName, type PretrainedModel } from "../models/registry.ts";
import { ConfigError } from "../train/config.ts";
import { normalizeConfigKeys } from "../train/config_keys.ts";
import { ModelSection, type ModelSectionValues } from "./config.ts";

/** The HF config.json object a model section describes (model_type gpt2 or llama). */
export function hfConfigOf(section: ModelSectionValues): Record<string, unknown> {
  const m = section;
  if (m.embeddingDim % m.numHeads !== 0) throw new ConfigError(`model.embeddingDim: ${m.embeddingDim} is not a multiple of model.numHeads (${m.numHeads}); fixConfig repairs it`);
  if (m.modelType === "gpt") {
    if (m.bias === false) throw new ConfigError("model.bias: false is not available for modelType gpt (kiln's GPT-2 has biases); fixConfig repairs it");
    return {
      architectures: ["GPT2LMHeadModel"], model_type: "gpt2", vocab_size: m.vocabSize, n_positions: m.maxSeqLength, n_ctx: m.maxSeqLength,
      n_embd: m.embeddingDim, n_layer: m.numLayers, n_head: m.numHeads, resid_pdrop: m.dropout, embd_pdrop: m.dropout, attn_pdrop: m.dropout,
      activation_function: "gelu_new", layer_norm_epsilon: 1e-5,
    };
  }
  if (m.bias === true) throw new ConfigError("model.bias: true is not available for modelType llama (kiln's Llama has no biases); fixConfig repairs it");
  const intermediate = m.intermediateSize ?? Math.ceil((8 * m.embeddingDim) / 3 / 64) * 64;
  return {
    architectures: ["LlamaForCausalLM"], model_type: "llama", vocab_size: m.vocabSize, hidden_size: m.embeddingDim, intermediate_size: intermediate,
    num_hidden_layers: m.numLayers, num_attention_heads: m.numHeads, num_key_value_heads: m.numHeads, hidden_act: "silu",
    max_position_embeddings: m.maxSeqLength, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: true,
    attention_bias: false, mlp_bias: false,
  };
}

/**
 * A freshly initialised model for `section` (a builder config's model section; camelCase or
 * snake_case keys). Prints its parameter count unless `log` is false.
 */
export function buildModel(section: Partial<ModelSectionValues> | Record<string, unknown>, options: { backend?: Backend; log?: ((line: string) => void) | false } = {}): PretrainedModel {
  const parsed = ModelSection.safeParse(normalizeConfigKeys(section as Record<string, unknown>, { source: "file", what: "model" }));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`model.${issue.path.join(".")}: ${issue.message}`);
  }
  const hf = hfConfigOf(parsed.data);
  const family = familyByName(hf.model_type as string);
  const model = createModel(family.parseConfig(hf), options.backend);
  if (options.log !== false) {
    (options.log ?? console.log)(`built a ${parsed.data.modelType === "gpt" ? "GPT-2" : "Llama"}-style model: ${formatCount(model.numParameters())} parameters`);
  }
  return model;
}

export function formatCount(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}K` : String(n);
}
