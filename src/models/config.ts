// Hugging Face config.json -> kiln model configs. GPT2LMHeadModel normalises to gpt.ts's GPTConfig fields;
// LlamaForCausalLM, MistralForCausalLM and Qwen2ForCausalLM normalise to LlamaConfig (RMSNorm, rotate-half
// RoPE, SwiGLU MLP, grouped-query attention, optional biases, tied or untied head). Fields that change the
// math in a way kiln does not implement (rope_scaling, quantization, other activations...) throw naming them.
// Not a model and no weights. Reference: transformers models/{gpt2,llama,mistral,qwen2}/configuration_*.py.
import { z } from "zod";

/** The architectures kiln can build, by HF class name -> kiln family. */
export const SUPPORTED_ARCHITECTURES = {
  GPT2LMHeadModel: "gpt2",
  LlamaForCausalLM: "llama",
  MistralForCausalLM: "mistral",
  Qwen2ForCausalLM: "qwen2",
} as const;
export type ModelFamily = (typeof SUPPORTED_ARCHITECTURES)[keyof typeof SUPPORTED_ARCHITECTURES];

const posInt = z.number().int().positive();
const tokenIds = z.union([z.number().int(), z.array(z.number().int())]).nullish();

/**
 * kiln's config for the Llama family (Llama, Mistral, Qwen2). Names follow gpt.ts (nLayer, nHead, nEmbd).
 * Attention: q = x Wq [+bq], k/v with nKvHead heads each shared by nHead/nKvHead query heads (GQA),
 * RoPE on q and k in the HF "rotate half" layout (pairs (i, i + headDim/2)), frequency ropeTheta^(-2i/headDim).
 * MLP: down(silu(gate(x)) * up(x)). Norms: RMSNorm(x) = x / sqrt(mean(x²) + rmsNormEps) * weight.
 */
export const LlamaConfig = z.object({
  family: z.enum(["llama", "mistral", "qwen2"]),
  vocabSize: posInt,
  /** hidden size (HF hidden_size) */
  nEmbd: posInt,
  /** HF num_hidden_layers */
  nLayer: posInt,
  /** query heads (HF num_attention_heads) */
  nHead: posInt,
  /** key/value heads (HF num_key_value_heads; = nHead when absent, i.e. plain multi-head attention) */
  nKvHead: posInt,
  /** per-head size (HF head_dim; default nEmbd / nHead). May differ from nEmbd / nHead. */
  headDim: posInt,
  /** MLP hidden size (HF intermediate_size) */
  intermediateSize: posInt,
  /** longest position the model was trained for (HF max_position_embeddings) */
  blockSize: posInt,
  rmsNormEps: z.number().positive(),
  /** RoPE base (HF rope_theta, or rope_parameters.rope_theta in newer configs) */
  ropeTheta: z.number().positive(),
  /** biases on the q, k and v projections (Qwen2: true; Llama: attention_bias) */
  qkvBias: z.boolean(),
  /** bias on the attention output projection (Llama attention_bias; false for Qwen2 and Mistral) */
  oBias: z.boolean(),
  /** biases on gate/up/down (Llama mlp_bias) */
  mlpBias: z.boolean(),
  /** lm_head shares the token embedding matrix (HF tie_word_embeddings) */
  tieWordEmbeddings: z.boolean(),
  /** Mistral sliding-window attention span, or null. Exact as full causal attention while T <= slidingWindow. */
  slidingWindow: posInt.nullable(),
  /** dropout on attention probabilities (HF attention_dropout; 0 in released models) */
  attentionDropout: z.number().min(0).max(1),
  bosTokenId: tokenIds,
  eosTokenId: tokenIds,
  padTokenId: tokenIds,
  /** storage dtype of the released weights (HF torch_dtype / dtype), informational */
  torchDtype: z.string().nullish(),
}).refine((c) => c.nHead % c.nKvHead === 0, { message: "nHead must be a multiple of nKvHead", path: ["nKvHead"] })
  .refine((c) => c.headDim % 2 === 0, { message: "headDim must be even for RoPE", path: ["headDim"] });
export type LlamaConfig = z.infer<typeof LlamaConfig>;

/** GPT-2 normalised to gpt.ts's GPTConfig fields (+ token ids); pass it to `new GPT(config)`. */
export const GPT2Config = z.object({
  family: z.literal("gpt2"),
  vocabSize: posInt,
  /** HF n_positions */
  blockSize: posInt,
  nLayer: posInt,
  nHead: posInt,
  nEmbd: posInt,
  /** HF resid_pdrop (kiln applies one dropout rate to embeddings and residual branches) */
  dropout: z.number().min(0).max(0.99),
  layerNormEps: z.number().positive(),
  bosTokenId: tokenIds,
  eosTokenId: tokenIds,
  torchDtype: z.string().nullish(),
});
export type GPT2Config = z.infer<typeof GPT2Config>;

export type ModelConfig = GPT2Config | LlamaConfig;

// --- raw HF config.json schemas (only the fields kiln reads; the rest is checked by name below) ---

const hfCommon = {
  architectures: z.array(z.string()).nullish(),
  model_type: z.string().nullish(),
  vocab_size: posInt,
  tie_word_embeddings: z.boolean().optional(),
  bos_token_id: tokenIds,
  eos_token_id: tokenIds,
  pad_token_id: tokenIds,
  torch_dtype: z.string().nullish(),
  dtype: z.string().nullish(),
};

const HFGPT2 = z.object({
  ...hfCommon,
  n_positions: posInt,
  n_embd: posInt,
  n_layer: posInt,
  n_head: posInt,
  n_inner: posInt.nullish(),
  activation_function: z.string().default("gelu_new"),
  resid_pdrop: z.number().default(0.1),
  layer_norm_epsilon: z.number().positive().default(1e-5),
  scale_attn_weights: z.boolean().default(true),
  scale_attn_by_inverse_layer_idx: z.boolean().default(false),
  add_cross_attention: z.boolean().default(false),
});

const HFLlama = z.object({
  ...hfCommon,
  hidden_size: posInt,
  intermediate_size: posInt,
  num_hidden_layers: posInt,
  num_attention_heads: posInt,
  num_key_value_heads: posInt.nullish(),
  head_dim: posInt.nullish(),
  hidden_act: z.string().default("silu"),
  max_position_embeddings: posInt,
  rms_norm_eps: z.number().positive(),
  rope_theta: z.number().positive().optional(),
  rope_parameters: z.object({ rope_theta: z.number().positive().optional(), rope_type: z.string().optional() }).loose().nullish(),
  rope_scaling: z.object({ type: z.string().optional(), rope_type: z.string().optional() }).loose().nullish(),
  attention_bias: z.boolean().default(false),
  mlp_bias: z.boolean().default(false),
  attention_dropout: z.number().min(0).max(1).default(0),
  sliding_window: posInt.nullish(),
  use_sliding_window: z.boolean().default(false),
  partial_rotary_factor: z.number().optional(),
  layer_types: z.array(z.string()).nullish(),
});

/** Fields that change the computation in ways kiln does not implement: any value but the allowed throws. */
const MUST_BE_ABSENT = ["quantization_config", "auto_map", "rope_local_base_freq"];

/**
 * Parse a Hugging Face config.json object into kiln's config for its architecture.
 * Throws `[config] ...` naming the architecture or field (and value) it cannot handle.
 * @example parseModelConfig(await Bun.file("gpt2/config.json").json()) // {family: "gpt2", nLayer: 12, ...}
 */
export function parseModelConfig(json: unknown): ModelConfig {
  if (json === null || typeof json !== "object" || Array.isArray(json)) throw new Error(`[config] config.json must be a JSON object`);
  const raw = json as Record<string, unknown>;
  const family = familyOf(raw);
  for (const k of MUST_BE_ABSENT) {
    if (raw[k] != null) {
      const v = raw[k] as Record<string, unknown>;
      const detail = k === "quantization_config" ? ` (quant_method ${JSON.stringify(v?.quant_method)})` : "";
      throw new Error(`[config] field ${k}${detail} is not supported: kiln loads unquantized weights with built-in code only`);
    }
  }
  return family === "gpt2" ? parseGPT2(raw) : parseLlama(raw, family);
}

/** Read and parse `<dir>/config.json`. */
export async function loadModelConfig(dir: string): Promise<ModelConfig> {
  const path = `${dir.replace(/\/$/, "")}/config.json`;
  const f = Bun.file(path);
  if (!(await f.exists())) throw new Error(`[config] ${path} not found`);
  let raw: unknown;
  try {
    raw = JSON.parse(await f.text());
  } catch (e) {
    throw new Error(`[config] ${path} is not valid JSON (${(e as Error).message})`);
  }
  try {
    return parseModelConfig(raw);
  } catch (e) {
    throw new Error(`[config] ${path}: ${(e as Error).message.replace(/^\[config\] /, "")}`, { cause: e });
  }
}

function familyOf(raw: Record<string, unknown>): ModelFamily {
  const archs = raw.architectures;
  const modelType = raw.model_type;
  const supported = Object.keys(SUPPORTED_ARCHITECTURES).join(", ");
  if (Array.isArray(archs) && archs.length > 0) {
    if (archs.length > 1) throw new Error(`[config] several architectures ${JSON.stringify(archs)}; kiln expects one`);
    const a = archs[0] as string;
    const fam = SUPPORTED_ARCHITECTURES[a as keyof typeof SUPPORTED_ARCHITECTURES];
    if (!fam) throw new Error(`[config] architecture ${JSON.stringify(a)} (model_type ${JSON.stringify(modelType)}) is not supported; supported: ${supported}`);
    if (modelType != null && modelType !== fam)
      throw new Error(`[config] architecture ${a} does not match model_type ${JSON.stringify(modelType)} (expected "${fam}")`);
    return fam;
  }
  const fam = Object.values(SUPPORTED_ARCHITECTURES).find((f) => f === modelType);
  if (!fam) throw new Error(`[config] model_type ${JSON.stringify(modelType)} is not supported (no architectures given); supported: ${supported}`);
  return fam;
}

function zodCheck<T extends z.ZodType>(schema: T, raw: unknown, what: string): z.infer<T> {
  const r = schema.safeParse(raw);
  if (!r.success) {
    const lines = r.error.issues.map((i) => {
      const value = i.path.reduce<unknown>((o, k) => (o as Record<PropertyKey, unknown>)?.[k as PropertyKey], raw);
      return `${i.path.join(".") || "(root)"} = ${JSON.stringify(value)}: ${i.message}`;
    });
    throw new Error(`[config] invalid ${what} config.json: ${lines.join("; ")}`);
  }
  return r.data;
}

function unsupported(field: string, value: unknown, why: string): never {
  throw new Error(`[config] field ${field} = ${JSON.stringify(value)} is not supported: ${why}`);
}

function parseGPT2(raw: Record<string, unknown>): GPT2Config {
  const c = zodCheck(HFGPT2, raw, "GPT2LMHeadModel");
  if (!["gelu_new", "gelu_pytorch_tanh"].includes(c.activation_function))
    unsupported("activation_function", c.activation_function, "kiln's GPT-2 uses the tanh GELU (gelu_new)");
  if (c.n_inner != null && c.n_inner !== 4 * c.n_embd) unsupported("n_inner", c.n_inner, `kiln's GPT-2 MLP is 4 * n_embd = ${4 * c.n_embd}`);
  if (!c.scale_attn_weights) unsupported("scale_attn_weights", false, "attention is always scaled by 1/sqrt(head dim)");
  if (c.scale_attn_by_inverse_layer_idx) unsupported("scale_attn_by_inverse_layer_idx", true, "not implemented");
  if (c.add_cross_attention) unsupported("add_cross_attention", true, "decoder-only models only");
  if (c.tie_word_embeddings === false) unsupported("tie_word_embeddings", false, "kiln's GPT-2 head is tied to wte");
  if (c.n_embd % c.n_head !== 0) unsupported("n_head", c.n_head, `n_embd ${c.n_embd} is not a multiple of it`);
  return GPT2Config.parse({
    family: "gpt2",
    vocabSize: c.vocab_size,
    blockSize: c.n_positions,
    nLayer: c.n_layer,
    nHead: c.n_head,
    nEmbd: c.n_embd,
    dropout: c.resid_pdrop,
    layerNormEps: c.layer_norm_epsilon,
    bosTokenId: c.bos_token_id,
    eosTokenId: c.eos_token_id,
    torchDtype: c.torch_dtype ?? c.dtype,
  });
}

function parseLlama(raw: Record<string, unknown>, family: "llama" | "mistral" | "qwen2"): LlamaConfig {
  const c = zodCheck(HFLlama, raw, `${family}`);
  if (c.hidden_act !== "silu") unsupported("hidden_act", c.hidden_act, "the SwiGLU MLP uses silu");
  const scaling = c.rope_scaling;
  const scalingType = scaling?.rope_type ?? scaling?.type;
  if (scaling != null && scalingType !== "default")
    unsupported("rope_scaling", scaling, `rope_scaling type ${JSON.stringify(scalingType)}: kiln's rope computes frequencies from rope_theta only`);
  const paramType = c.rope_parameters?.rope_type;
  if (paramType != null && paramType !== "default")
    unsupported("rope_parameters.rope_type", paramType, "kiln's rope computes frequencies from rope_theta only");
  if (c.partial_rotary_factor != null && c.partial_rotary_factor !== 1)
    unsupported("partial_rotary_factor", c.partial_rotary_factor, "RoPE is applied to the whole head");
  if (c.use_sliding_window) unsupported("use_sliding_window", true, "Qwen2 per-layer sliding windows are not implemented");
  const odd = c.layer_types?.find((t) => t !== "full_attention");
  if (odd) unsupported("layer_types", odd, "every layer must be full_attention");
  for (const k of ["attention_bias", "mlp_bias"])
    if (family !== "llama" && raw[k] === true) unsupported(k, true, `${family} has fixed biases`);
  const ropeTheta = c.rope_parameters?.rope_theta ?? c.rope_theta ?? 10000;
  const nKvHead = c.num_key_value_heads ?? c.num_attention_heads;
  const headDim = c.head_dim ?? c.hidden_size / c.num_attention_heads;
  if (!Number.isInteger(headDim)) unsupported("num_attention_heads", c.num_attention_heads, `hidden_size ${c.hidden_size} is not a multiple of it`);
  if (c.num_attention_heads % nKvHead !== 0)
    unsupported("num_key_value_heads", nKvHead, `num_attention_heads ${c.num_attention_heads} is not a multiple of it`);
  return zodCheck(LlamaConfig, {
    family,
    vocabSize: c.vocab_size,
    nEmbd: c.hidden_size,
    nLayer: c.num_hidden_layers,
    nHead: c.num_attention_heads,
    nKvHead,
    headDim,
    intermediateSize: c.intermediate_size,
    blockSize: c.max_position_embeddings,
    rmsNormEps: c.rms_norm_eps,
    ropeTheta,
    qkvBias: family === "qwen2" ? true : family === "llama" ? c.attention_bias : false,
    oBias: family === "llama" ? c.attention_bias : false,
    mlpBias: family === "llama" ? c.mlp_bias : false,
    tieWordEmbeddings: c.tie_word_embeddings ?? false,
    slidingWindow: family === "mistral" ? (c.sliding_window ?? null) : null,
    attentionDropout: c.attention_dropout,
    bosTokenId: c.bos_token_id,
    eosTokenId: c.eos_token_id,
    padTokenId: c.pad_token_id,
    torchDtype: c.torch_dtype ?? c.dtype,
  }, `kiln ${family}`);
}

/**
 * The inverse of parseModelConfig: a Hugging Face config.json object (HF field names, architectures,
 * model_type, torch_dtype "float32": kiln saves f32 weights) that parses back to the same config and
 * that transformers reads as the same model. Throws for a kiln config HF cannot express.
 */
export function toHFConfig(config: ModelConfig): Record<string, unknown> {
  const ids = (c: ModelConfig) => Object.fromEntries(
    ([["bos_token_id", c.bosTokenId], ["eos_token_id", c.eosTokenId], ["pad_token_id", "padTokenId" in c ? c.padTokenId : null]] as const)
      .filter(([, v]) => v != null),
  );
  if (config.family === "gpt2") {
    const c = config;
    return {
      architectures: ["GPT2LMHeadModel"], model_type: "gpt2", vocab_size: c.vocabSize, n_positions: c.blockSize, n_ctx: c.blockSize,
      n_embd: c.nEmbd, n_layer: c.nLayer, n_head: c.nHead, n_inner: null, activation_function: "gelu_new",
      // kiln drops embeddings and residual branches, never attention probabilities
      resid_pdrop: c.dropout, embd_pdrop: c.dropout, attn_pdrop: 0, layer_norm_epsilon: c.layerNormEps,
      initializer_range: 0.02, scale_attn_weights: true, tie_word_embeddings: true, use_cache: true, ...ids(c), torch_dtype: "float32",
    };
  }
  const c = config;
  const arch = { llama: "LlamaForCausalLM", mistral: "MistralForCausalLM", qwen2: "Qwen2ForCausalLM" }[c.family];
  const fixedBias = { qwen2: [true, false, false], mistral: [false, false, false] } as const;
  if (c.family === "llama" && c.qkvBias !== c.oBias) {
    throw new Error(`[config] llama with qkvBias ${c.qkvBias} but oBias ${c.oBias}: HF attention_bias sets both`);
  }
  if (c.family !== "llama") {
    const [qkv, o, mlp] = fixedBias[c.family];
    if (c.qkvBias !== qkv || c.oBias !== o || c.mlpBias !== mlp) {
      throw new Error(`[config] ${c.family} has fixed biases (q/k/v ${qkv}, o ${o}, mlp ${mlp}); got ${c.qkvBias}, ${c.oBias}, ${c.mlpBias}`);
    }
  }
  return {
    architectures: [arch], model_type: c.family, vocab_size: c.vocabSize, hidden_size: c.nEmbd, intermediate_size: c.intermediateSize,
    num_hidden_layers: c.nLayer, num_attention_heads: c.nHead, num_key_value_heads: c.nKvHead, head_dim: c.headDim,
    hidden_act: "silu", max_position_embeddings: c.blockSize, rms_norm_eps: c.rmsNormEps, rope_theta: c.ropeTheta, rope_scaling: null,
    ...(c.family === "llama" ? { attention_bias: c.qkvBias, mlp_bias: c.mlpBias } : {}),
    ...(c.family === "mistral" ? { sliding_window: c.slidingWindow } : {}),
    ...(c.family === "qwen2" ? { use_sliding_window: false } : {}),
    attention_dropout: c.attentionDropout, initializer_range: 0.02, tie_word_embeddings: c.tieWordEmbeddings, use_cache: true,
    ...ids(c), torch_dtype: "float32",
  };
}
