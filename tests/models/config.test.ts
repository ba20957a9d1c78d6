// parseModelConfig: HF config.json for GPT-2, Llama (2, 3), Mistral and Qwen2 -> kiln configs, and clear
// errors naming unsupported architectures, fields and values. Configs are the released models' own fields.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { GPTConfig } from "../../src/models/gpt.ts";
import { loadModelConfig, parseModelConfig, type LlamaConfig } from "../../src/models/config.ts";

const GPT2_DIR = join(import.meta.dir, "../../../shared/data/tokenizers/gpt2");
const HAVE_GPT2 = await Bun.file(join(GPT2_DIR, "config.json")).exists();

const gpt2 = {
  activation_function: "gelu_new", architectures: ["GPT2LMHeadModel"], attn_pdrop: 0.1, bos_token_id: 50256, embd_pdrop: 0.1,
  eos_token_id: 50256, initializer_range: 0.02, layer_norm_epsilon: 1e-5, model_type: "gpt2", n_ctx: 1024, n_embd: 768,
  n_head: 12, n_inner: null, n_layer: 12, n_positions: 1024, resid_pdrop: 0.1, scale_attn_weights: true, vocab_size: 50257,
};
const llama3_8b = {
  architectures: ["LlamaForCausalLM"], attention_bias: false, attention_dropout: 0.0, bos_token_id: 128000, eos_token_id: 128001,
  hidden_act: "silu", hidden_size: 4096, initializer_range: 0.02, intermediate_size: 14336, max_position_embeddings: 8192,
  model_type: "llama", num_attention_heads: 32, num_hidden_layers: 32, num_key_value_heads: 8, pretraining_tp: 1,
  rms_norm_eps: 1e-5, rope_scaling: null, rope_theta: 500000.0, tie_word_embeddings: false, torch_dtype: "bfloat16",
  transformers_version: "4.40.0.dev0", use_cache: true, vocab_size: 128256,
};
const mistral_7b = {
  architectures: ["MistralForCausalLM"], bos_token_id: 1, eos_token_id: 2, hidden_act: "silu", hidden_size: 4096,
  initializer_range: 0.02, intermediate_size: 14336, max_position_embeddings: 32768, model_type: "mistral",
  num_attention_heads: 32, num_hidden_layers: 32, num_key_value_heads: 8, rms_norm_eps: 1e-5, rope_theta: 10000.0,
  sliding_window: 4096, tie_word_embeddings: false, torch_dtype: "bfloat16", use_cache: true, vocab_size: 32000,
};
const qwen2_05b = {
  architectures: ["Qwen2ForCausalLM"], attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151643, hidden_act: "silu",
  hidden_size: 896, initializer_range: 0.02, intermediate_size: 4864, max_position_embeddings: 32768, max_window_layers: 24,
  model_type: "qwen2", num_attention_heads: 14, num_hidden_layers: 24, num_key_value_heads: 2, rms_norm_eps: 1e-6,
  rope_theta: 1000000.0, sliding_window: 32768, tie_word_embeddings: true, torch_dtype: "bfloat16", use_cache: true,
  use_sliding_window: false, vocab_size: 151936,
};

describe("config", () => {
  test("GPT2LMHeadModel -> GPTConfig fields that gpt.ts accepts", () => {
    const c = parseModelConfig(gpt2);
    expect(c).toMatchObject({ family: "gpt2", vocabSize: 50257, blockSize: 1024, nLayer: 12, nHead: 12, nEmbd: 768, dropout: 0.1, layerNormEps: 1e-5, eosTokenId: 50256 });
    expect(GPTConfig.parse(c)).toMatchObject({ nEmbd: 768, blockSize: 1024 });
  });

  test.skipIf(!HAVE_GPT2)("the shared GPT-2 config.json is refused for its GPTQ quantization_config", async () => {
    await expect(loadModelConfig(GPT2_DIR)).rejects.toThrow(/quantization_config \(quant_method "gptq"\) is not supported/);
  });

  test("Llama 3 8B: GQA 32/8, rope_theta 500000, untied", () => {
    const c = parseModelConfig(llama3_8b) as LlamaConfig;
    expect(c).toMatchObject({
      family: "llama", vocabSize: 128256, nEmbd: 4096, nLayer: 32, nHead: 32, nKvHead: 8, headDim: 128, intermediateSize: 14336,
      blockSize: 8192, rmsNormEps: 1e-5, ropeTheta: 500000, qkvBias: false, oBias: false, mlpBias: false, tieWordEmbeddings: false,
      slidingWindow: null, bosTokenId: 128000, eosTokenId: 128001, torchDtype: "bfloat16",
    });
  });

  test("Llama defaults: no num_key_value_heads = multi-head, no rope_theta = 10000, attention_bias -> q/k/v/o biases", () => {
    const { num_key_value_heads: _, rope_theta: __, ...llama2 } = llama3_8b;
    const c = parseModelConfig({ ...llama2, attention_bias: true, mlp_bias: true }) as LlamaConfig;
    expect(c).toMatchObject({ nKvHead: 32, ropeTheta: 10000, qkvBias: true, oBias: true, mlpBias: true });
  });

  test("Mistral 7B v0.1: sliding window kept", () => {
    expect(parseModelConfig(mistral_7b)).toMatchObject({ family: "mistral", nKvHead: 8, slidingWindow: 4096, qkvBias: false, ropeTheta: 10000 });
  });

  test("Qwen2 0.5B: q/k/v biases, tied embeddings, unused sliding_window ignored", () => {
    expect(parseModelConfig(qwen2_05b)).toMatchObject({
      family: "qwen2", nEmbd: 896, nHead: 14, nKvHead: 2, headDim: 64, qkvBias: true, oBias: false, tieWordEmbeddings: true,
      slidingWindow: null, rmsNormEps: 1e-6, ropeTheta: 1000000,
    });
  });

  test("newer configs: rope_parameters, dtype, explicit head_dim, all-full layer_types", () => {
    const { rope_theta: _, torch_dtype: __, ...rest } = qwen2_05b;
    const c = parseModelConfig({ ...rest, rope_parameters: { rope_theta: 1e6, rope_type: "default" }, dtype: "float32", head_dim: 128, layer_types: Array(24).fill("full_attention") });
    expect(c).toMatchObject({ ropeTheta: 1e6, torchDtype: "float32", headDim: 128 });
  });

  test("unsupported architectures and fields are named", () => {
    expect(() => parseModelConfig({ ...llama3_8b, architectures: ["Gemma2ForCausalLM"], model_type: "gemma2" })).toThrow(
      /architecture "Gemma2ForCausalLM" \(model_type "gemma2"\) is not supported; supported: GPT2LMHeadModel, LlamaForCausalLM/,
    );
    expect(() => parseModelConfig({ model_type: "phi3", vocab_size: 10 })).toThrow(/model_type "phi3" is not supported/);
    expect(() => parseModelConfig({ ...llama3_8b, model_type: "mistral" })).toThrow(/does not match model_type "mistral"/);
    expect(() => parseModelConfig({ ...llama3_8b, rope_scaling: { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192, rope_type: "llama3" } })).toThrow(
      /rope_scaling = .*rope_scaling type "llama3"/,
    );
    expect(() => parseModelConfig({ ...llama3_8b, hidden_act: "gelu" })).toThrow(/hidden_act = "gelu" is not supported/);
    expect(() => parseModelConfig({ ...qwen2_05b, use_sliding_window: true })).toThrow(/use_sliding_window = true/);
    expect(() => parseModelConfig({ ...mistral_7b, attention_bias: true })).toThrow(/attention_bias = true/);
    expect(() => parseModelConfig({ ...gpt2, activation_function: "relu" })).toThrow(/activation_function = "relu"/);
    expect(() => parseModelConfig({ ...gpt2, n_inner: 1000 })).toThrow(/n_inner = 1000/);
    expect(() => parseModelConfig({ ...llama3_8b, num_key_value_heads: 5 })).toThrow(/num_key_value_heads = 5/);
  });

  test("bad values name the field and the value (zod)", () => {
    expect(() => parseModelConfig({ ...llama3_8b, num_attention_heads: "32" })).toThrow(/num_attention_heads = "32"/);
    expect(() => parseModelConfig({ ...gpt2, n_layer: -1 })).toThrow(/n_layer = -1/);
    expect(() => parseModelConfig([])).toThrow(/must be a JSON object/);
  });
});
