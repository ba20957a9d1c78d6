// The Llama family as Hugging Face's LlamaForCausalLM, Qwen2ForCausalLM and MistralForCausalLM
// compute it: token embedding, pre-RMSNorm decoder layers with grouped-query attention (RoPE in
// the "rotate half" layout, optional q/k/v biases as Qwen2's), a SwiGLU MLP, a final RMSNorm, and
// an lm_head tied to the embedding or not. Parameter names are Hugging Face's, so safetensors
// checkpoints load name-for-name. Not here: training code, loading files (./pretrained.ts), and
// attention-probability dropout (HF attention_dropout; 0 in released models) or sliding windows.
// Also LlamaConfig, its HF config.json fields both ways, the checkpoint tensor names, and the llama
// family; llamaFamily() builds the families that share this graph (./qwen2.ts, ./mistral.ts).
// Reference: transformers models/llama/modeling_llama.py (and qwen2, mistral: the same graph).

import { z } from "zod";
import { Module, ModuleList } from "../nn/module.ts";
import { Embedding, Linear, RMSNorm } from "../nn/layers.ts";
import { ModulesToSaveWrapper } from "../nn/modules_to_save.ts";
import type { Tensor } from "../tensor/tensor.ts";
import * as ops from "../ops/index.ts";
import type { Backend } from "../backend/backend.ts";
import type { GGUFNames, ModelFamily } from "./family.ts";
import { hfCommon, hfTokenIds, posInt, tokenIds, unsupported, zodCheck } from "./hf_config.ts";
import { savePretrained, type SaveOptions } from "./save.ts";
import { KVCache } from "./kv_cache.ts";
import { BatchedKVCache, cachedAttention, type AnyKVCache } from "./batched_kv_cache.ts";
import { keepLast } from "./logits.ts";
import { checkpoint } from "../autograd/checkpoint.ts";
import { isTraining } from "../tensor/mode.ts";

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

class LlamaAttention extends Module {
  readonly q_proj: Linear;
  readonly k_proj: Linear;
  readonly v_proj: Linear;
  readonly o_proj: Linear;
  constructor(readonly config: LlamaConfig, backend?: Backend) {
    super();
    const { nEmbd: C, nHead: H, nKvHead: Hkv, headDim: D, qkvBias, oBias } = config;
    this.q_proj = this.module("q_proj", new Linear(C, H * D, { bias: qkvBias, backend }));
    this.k_proj = this.module("k_proj", new Linear(C, Hkv * D, { bias: qkvBias, backend }));
    this.v_proj = this.module("v_proj", new Linear(C, Hkv * D, { bias: qkvBias, backend }));
    this.o_proj = this.module("o_proj", new Linear(H * D, C, { bias: oBias, backend }));
  }

  /** x [B, T, C] at positions offset..offset+T−1; with a cache, attends over every cached position. */
  forward(x: Tensor, offset: number, cache?: AnyKVCache, layer = 0): Tensor {
    const [B, T] = x.shape;
    const { nHead: H, nKvHead: Hkv, headDim: D, ropeTheta: theta } = this.config;
    // a batched cache puts each row at its own position
    const rope = (t: Tensor) => (cache instanceof BatchedKVCache ? cache.rope(t, theta) : ops.rope(t, { theta, offset }));
    const q = rope(this.q_proj.forward(x).reshape(B, T, H, D)); // [B, T, H, D]
    const k = rope(this.k_proj.forward(x).reshape(B, T, Hkv, D)); // [B, T, Hkv, D]
    const v = this.v_proj.forward(x).reshape(B, T, Hkv, D); // [B, T, Hkv, D]
    const y = cachedAttention(q, k, v, cache, layer).reshape(B, T, H * D); // [B, T, H·D], GQA in the kernel
    return this.o_proj.forward(y); // [B, T, C]
  }
}

class LlamaMLP extends Module {
  readonly gate_proj: Linear;
  readonly up_proj: Linear;
  readonly down_proj: Linear;
  constructor(config: LlamaConfig, backend?: Backend) {
    super();
    const { nEmbd: C, intermediateSize: I, mlpBias: bias } = config;
    this.gate_proj = this.module("gate_proj", new Linear(C, I, { bias, backend }));
    this.up_proj = this.module("up_proj", new Linear(C, I, { bias, backend }));
    this.down_proj = this.module("down_proj", new Linear(I, C, { bias, backend }));
  }

  forward(x: Tensor): Tensor {
    const h = ops.silu(this.gate_proj.forward(x)).mul(this.up_proj.forward(x)); // [B, T, I]
    return this.down_proj.forward(h); // [B, T, C]
  }
}

class LlamaDecoderLayer extends Module {
  readonly input_layernorm: RMSNorm;
  readonly self_attn: LlamaAttention;
  readonly post_attention_layernorm: RMSNorm;
  readonly mlp: LlamaMLP;
  constructor(config: LlamaConfig, backend?: Backend) {
    super();
    this.input_layernorm = this.module("input_layernorm", new RMSNorm(config.nEmbd, config.rmsNormEps, { backend }));
    this.self_attn = this.module("self_attn", new LlamaAttention(config, backend));
    this.post_attention_layernorm = this.module("post_attention_layernorm", new RMSNorm(config.nEmbd, config.rmsNormEps, { backend }));
    this.mlp = this.module("mlp", new LlamaMLP(config, backend));
  }

  forward(x: Tensor, offset: number, cache?: AnyKVCache, layer = 0): Tensor {
    // under autocast on WebGPU: the layer's unsaved f32 activations are freed after its forward
    return ops.activationScope(x, () => {
      const h = x.add(this.self_attn.forward(this.input_layernorm.forward(x), offset, cache, layer)); // [B, T, C]
      return h.add(this.mlp.forward(this.post_attention_layernorm.forward(h))); // [B, T, C]
    });
  }
}

class LlamaModel extends Module {
  readonly embed_tokens: Embedding;
  readonly layers: ModuleList<LlamaDecoderLayer>;
  readonly norm: RMSNorm;
  constructor(config: LlamaConfig, backend?: Backend) {
    super();
    this.embed_tokens = this.module("embed_tokens", new Embedding(config.vocabSize, config.nEmbd, { backend }));
    this.layers = this.module("layers", new ModuleList(Array.from({ length: config.nLayer }, () => new LlamaDecoderLayer(config, backend))));
    this.norm = this.module("norm", new RMSNorm(config.nEmbd, config.rmsNormEps, { backend }));
  }
}

/** LlamaForCausalLM (and, by `config.family`, Qwen2ForCausalLM / MistralForCausalLM). */
export class LlamaForCausalLM extends Module {
  /** the config.family this class builds */
  static readonly family: LlamaConfig["family"] = "llama";
  readonly config: LlamaConfig;
  readonly model: LlamaModel;
  /** null when tied: the head is model.embed_tokens.weight */
  readonly lm_head: Linear | null;
  /**
   * Recompute each decoder layer's forward in backward instead of keeping its activations while
   * training (HF gradient_checkpointing_enable(); see src/autograd/checkpoint.ts).
   */
  gradientCheckpointing = false;

  constructor(config: z.input<typeof LlamaConfig>, backend?: Backend) {
    super();
    this.config = LlamaConfig.parse(config);
    const cls = new.target as typeof LlamaForCausalLM;
    if (cls !== LlamaForCausalLM && this.config.family !== cls.family) {
      throw new Error(`[llama] ${cls.name} needs family "${cls.family}", config has "${this.config.family}"`);
    }
    this.model = this.module("model", new LlamaModel(this.config, backend));
    this.lm_head = this.config.tieWordEmbeddings
      ? null
      : this.module("lm_head", new Linear(this.config.nEmbd, this.config.vocabSize, { bias: false, backend }));
  }

  /**
   * Logits [B, T, V] for token ids [B, T] (i32), or [B, logitsToKeep, V] for the last positions only
   * (HF's logits_to_keep). With `cache`, the tokens sit at positions cache.length.. (the RoPE
   * offset), their keys/values are appended to the cache, and attention covers everything cached.
   */
  forward(ids: Tensor, options: { cache?: AnyKVCache; logitsToKeep?: number } = {}): Tensor {
    const x = this.hiddenStates(ids, options); // [B, T', C]
    // through the child when untied, so a replaced lm_head (a LoRA wrapper, say) takes effect
    return this.lm_head ? this.lm_head.forward(x) : ops.linear(x, this.headWeight, null, "out_in"); // [B, T', V]
  }

  /**
   * The final-normed hidden states [B, T, C] that the head projects onto the vocabulary (HF's
   * last_hidden_state): forward without the head, for losses that apply it chunk by chunk.
   */
  hiddenStates(ids: Tensor, { cache, logitsToKeep = 0 }: { cache?: AnyKVCache; logitsToKeep?: number } = {}): Tensor {
    if (ids.rank !== 2) throw new Error(`[llama] ids must be [B, T], got ${ids.describe()}`);
    const T = ids.shape[1];
    const offset = cache?.length ?? 0;
    const window = this.config.slidingWindow;
    if (window !== null && offset + T > window) {
      throw new Error(`[llama] ${offset + T} positions exceed the sliding window ${window}: sliding-window attention is not implemented`);
    }
    let x = this.model.embed_tokens.forward(ids); // [B, T, C]
    const checkpointed = this.gradientCheckpointing && !cache && isTraining(this);
    this.model.layers.items.forEach((layer, i) => {
      const run = (h: Tensor) => layer.forward(h, offset, cache, i);
      x = checkpointed ? checkpoint(run, [x], layer.parameters()) : run(x); // [B, T, C]
    });
    cache?.advance(T);
    return this.model.norm.forward(keepLast(x, logitsToKeep)); // [B, T', C]
  }

  /** Mean cross-entropy of next-token prediction against targets [B, T], without the [B, T, V] logits when the head allows. */
  loss(ids: Tensor, targets: Tensor): Tensor {
    const head = this.outputHead;
    if (!head) return ops.crossEntropy(this.forward(ids), targets);
    return ops.linearCrossEntropy(this.hiddenStates(ids), head.weight, targets, { bias: head.bias });
  }

  /**
   * The head as a plain matrix [V, C] (and bias) for chunked losses, or null when lm_head was
   * replaced by a module that is more than a matrix (a LoRA wrapper): then only forward applies it.
   */
  get outputHead(): { weight: Tensor; bias: Tensor | null } | null {
    if (!this.lm_head) return { weight: this.model.embed_tokens.weight, bias: null };
    // modules_to_save: the running module (the adapter's copy, or the original) is a plain Linear
    const head = this.lm_head instanceof ModulesToSaveWrapper ? this.lm_head.active : this.lm_head;
    return head instanceof Linear && (head.options.layout ?? "out_in") === "out_in" ? { weight: head.weight, bias: head.bias } : null;
  }

  /** The output projection [V, C]: lm_head.weight, or the token embedding when tied. */
  get headWeight(): Tensor {
    return this.lm_head?.weight ?? this.model.embed_tokens.weight;
  }

  /** An empty KV cache for `batch` sequences of up to maxLength positions (prompt + new tokens). */
  newCache(batch: number, maxLength: number): KVCache {
    const { nLayer: layers, nKvHead: kvHeads, headDim } = this.config;
    return new KVCache({ layers, batch, maxLength, kvHeads, headDim, backend: this.model.embed_tokens.weight.backend });
  }

  /**
   * The family this model reads and writes Hugging Face folders as (Qwen2ForCausalLM and
   * MistralForCausalLM override it). A LlamaForCausalLM built from another family's config does
   * not know it: build that one with its class or createModel(config).
   */
  get family(): ModelFamily<LlamaConfig, LlamaForCausalLM> {
    if (this.config.family !== "llama") {
      throw new Error(`[llama] a LlamaForCausalLM built from a ${this.config.family} config cannot save it as ${this.config.family}: build it with createModel(config)`);
    }
    return llama;
  }

  /** Writes a Hugging Face folder (config.json, model.safetensors, tokenizer files): see ./save.ts. */
  async savePretrained(dir: string, options?: SaveOptions): Promise<void> {
    await savePretrained(this, dir, options);
  }
}

// ---------------------------------------------------------------------------------------------
// The Llama-graph families: HF config.json both ways, checkpoint names. What differs between
// Llama, Qwen2 and Mistral (which biases exist, a sliding window) is a LlamaVariant.
// Reference: transformers models/{llama,mistral,qwen2}/configuration_*.py.

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
export type HFLlamaConfig = z.infer<typeof HFLlama>;

/** What one Llama-graph family adds to the shared parsing and writing. */
export interface LlamaVariant<M extends LlamaForCausalLM> {
  name: LlamaConfig["family"];
  architecture: string;
  create(config: LlamaConfig, backend?: Backend): M;
  /** the biases and sliding window of an HF config (throws for values this family cannot have) */
  read(c: HFLlamaConfig, raw: Record<string, unknown>): Pick<LlamaConfig, "qkvBias" | "oBias" | "mlpBias" | "slidingWindow">;
  /** this family's own HF fields for a kiln config (throws when HF cannot express it) */
  write(c: LlamaConfig): Record<string, unknown>;
  /** llama.cpp's architecture for it, and whether q/k rows are permuted for its RoPE ("llama": yes; "qwen2" runs HF's rotate-half RoPE as is) */
  gguf: { architecture: string; ropePermute: boolean };
}

function parseLlama<M extends LlamaForCausalLM>(raw: Record<string, unknown>, v: LlamaVariant<M>): LlamaConfig {
  const family = v.name;
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
    ...v.read(c, raw),
    tieWordEmbeddings: c.tie_word_embeddings ?? false,
    attentionDropout: c.attention_dropout,
    bosTokenId: c.bos_token_id,
    eosTokenId: c.eos_token_id,
    padTokenId: c.pad_token_id,
    torchDtype: c.torch_dtype ?? c.dtype,
  }, `kiln ${family}`);
}

/** The tensors transformers saves for a Llama-graph config, in kiln's parameter order. */
function llamaTensorNames(c: LlamaConfig): string[] {
  const linear = (name: string, bias: boolean) => (bias ? [`${name}.weight`, `${name}.bias`] : [`${name}.weight`]);
  const layer = (i: number) => [
    "input_layernorm.weight",
    ...["q_proj", "k_proj", "v_proj"].flatMap((n) => linear(`self_attn.${n}`, c.qkvBias)),
    ...linear("self_attn.o_proj", c.oBias),
    "post_attention_layernorm.weight",
    ...["gate_proj", "up_proj", "down_proj"].flatMap((n) => linear(`mlp.${n}`, c.mlpBias)),
  ].map((n) => `model.layers.${i}.${n}`);
  return [
    "model.embed_tokens.weight",
    ...Array.from({ length: c.nLayer }, (_, i) => layer(i)).flat(),
    "model.norm.weight",
    ...(c.tieWordEmbeddings ? [] : ["lm_head.weight"]),
  ];
}

/** A family on the Llama graph: shared parsing, names and HF fields, plus the variant's own. */
export function llamaFamily<M extends LlamaForCausalLM>(v: LlamaVariant<M>): ModelFamily<LlamaConfig, M> {
  return {
    name: v.name,
    architecture: v.architecture,
    parseConfig: (raw) => parseLlama(raw, v),
    toHFConfig: (c) => ({
      architectures: [v.architecture], model_type: v.name, vocab_size: c.vocabSize, hidden_size: c.nEmbd, intermediate_size: c.intermediateSize,
      num_hidden_layers: c.nLayer, num_attention_heads: c.nHead, num_key_value_heads: c.nKvHead, head_dim: c.headDim,
      hidden_act: "silu", max_position_embeddings: c.blockSize, rms_norm_eps: c.rmsNormEps, rope_theta: c.ropeTheta, rope_scaling: null,
      ...v.write(c),
      attention_dropout: c.attentionDropout, initializer_range: 0.02, tie_word_embeddings: c.tieWordEmbeddings, use_cache: true,
      ...hfTokenIds(c), torch_dtype: "float32",
    }),
    create: v.create,
    configOf: (model) => model.config,
    hfTensorNames: llamaTensorNames,
    // HF checkpoints carry RoPE inv_freq buffers (older ones), and some a tied lm_head.weight
    fromHFName: (name, c) => (name.endsWith(".rotary_emb.inv_freq") || (name === "lm_head.weight" && c.tieWordEmbeddings) ? null : name),
    toHFName: (name) => name,
    gguf: llamaGguf(v),
  };
}

// llama.cpp's names for the Llama graph (convert_hf_to_gguf.py LlamaModel / Qwen2Model).
const LLAMA_GGUF_LAYER: Record<string, string> = {
  input_layernorm: "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
  "self_attn.o_proj": "attn_output", post_attention_layernorm: "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
  "mlp.down_proj": "ffn_down",
};

function llamaGguf<M extends LlamaForCausalLM>(v: LlamaVariant<M>): GGUFNames<LlamaConfig> {
  return {
    architecture: v.gguf.architecture,
    tensorName: (name) => {
      const top: Record<string, string> = { "model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight" };
      if (top[name]) return top[name];
      const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(name);
      const part = m && LLAMA_GGUF_LAYER[m[2]];
      return part ? `blk.${m[1]}.${part}.${m[3]}` : null;
    },
    layout: (name, c) => {
      if (!v.gguf.ropePermute) return null;
      if (/^model\.layers\.\d+\.self_attn\.q_proj\.(weight|bias)$/.test(name)) return { kind: "rope", heads: c.nHead };
      if (/^model\.layers\.\d+\.self_attn\.k_proj\.(weight|bias)$/.test(name)) return { kind: "rope", heads: c.nKvHead };
      return null;
    },
    hparams: (c) => ({
      context_length: c.blockSize, embedding_length: c.nEmbd, block_count: c.nLayer, feed_forward_length: c.intermediateSize,
      "attention.head_count": c.nHead, "attention.head_count_kv": c.nKvHead, "attention.key_length": c.headDim, "attention.value_length": c.headDim,
      "attention.layer_norm_rms_epsilon": c.rmsNormEps, "rope.freq_base": c.ropeTheta, "rope.dimension_count": c.headDim,
    }),
    fromHParams: (h, f) => {
      const nHead = h["attention.head_count"];
      const headDim = h["attention.key_length"] ?? h.embedding_length / nHead;
      if ((h["rope.dimension_count"] ?? headDim) !== headDim) unsupported("rope.dimension_count", h["rope.dimension_count"], "RoPE is applied to the whole head");
      return zodCheck(LlamaConfig, {
        family: v.name, vocabSize: f.vocabSize, nEmbd: h.embedding_length, nLayer: h.block_count, nHead,
        nKvHead: h["attention.head_count_kv"] ?? nHead, headDim, intermediateSize: h.feed_forward_length, blockSize: h.context_length,
        rmsNormEps: h["attention.layer_norm_rms_epsilon"] ?? 1e-5, ropeTheta: h["rope.freq_base"] ?? 10000,
        qkvBias: f.hasTensor("blk.0.attn_q.bias"), oBias: f.hasTensor("blk.0.attn_output.bias"), mlpBias: f.hasTensor("blk.0.ffn_up.bias"),
        tieWordEmbeddings: !f.hasTensor("output.weight"), slidingWindow: null, attentionDropout: 0,
        bosTokenId: f.bosTokenId, eosTokenId: f.eosTokenId, padTokenId: null, torchDtype: null,
      }, `kiln ${v.name}`);
    },
  };
}

/** Checks a family with fixed biases (Qwen2, Mistral): HF has no field for them. */
export function fixedBiases(family: string, [qkv, o, mlp]: readonly [boolean, boolean, boolean]) {
  return {
    read(_c: HFLlamaConfig, raw: Record<string, unknown>) {
      for (const k of ["attention_bias", "mlp_bias"]) if (raw[k] === true) unsupported(k, true, `${family} has fixed biases`);
      return { qkvBias: qkv, oBias: o, mlpBias: mlp };
    },
    check(c: LlamaConfig) {
      if (c.qkvBias !== qkv || c.oBias !== o || c.mlpBias !== mlp) {
        throw new Error(`[config] ${family} has fixed biases (q/k/v ${qkv}, o ${o}, mlp ${mlp}); got ${c.qkvBias}, ${c.oBias}, ${c.mlpBias}`);
      }
    },
  };
}

export const llama = llamaFamily({
  name: "llama",
  architecture: "LlamaForCausalLM",
  create: (config, backend) => new LlamaForCausalLM(config, backend),
  read: (c) => ({ qkvBias: c.attention_bias, oBias: c.attention_bias, mlpBias: c.mlp_bias, slidingWindow: null }),
  gguf: { architecture: "llama", ropePermute: true },
  write: (c) => {
    if (c.qkvBias !== c.oBias) throw new Error(`[config] llama with qkvBias ${c.qkvBias} but oBias ${c.oBias}: HF attention_bias sets both`);
    return { attention_bias: c.qkvBias, mlp_bias: c.mlpBias };
  },
});
