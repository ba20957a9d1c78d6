// The Llama family as Hugging Face's LlamaForCausalLM, Qwen2ForCausalLM and MistralForCausalLM
// compute it: token embedding, pre-RMSNorm decoder layers with grouped-query attention (RoPE in
// the "rotate half" layout, optional q/k/v biases as Qwen2's), a SwiGLU MLP, a final RMSNorm, and
// an lm_head tied to the embedding or not. Parameter names are Hugging Face's, so safetensors
// checkpoints load name-for-name. Not here: training code, loading files (./pretrained.ts), and
// attention-probability dropout (HF attention_dropout; 0 in released models) or sliding windows.
// Reference: transformers models/llama/modeling_llama.py (and qwen2, mistral: the same graph).

import { z } from "zod";
import { Module, ModuleList } from "../nn/module.ts";
import { Embedding, Linear, RMSNorm } from "../nn/layers.ts";
import type { Tensor } from "../tensor/tensor.ts";
import * as ops from "../ops/index.ts";
import type { Backend } from "../backend/backend.ts";
import { LlamaConfig } from "./config.ts";
import { KVCache } from "./kv_cache.ts";
import { BatchedKVCache, cachedAttention, type AnyKVCache } from "./batched_kv_cache.ts";
import { keepLast } from "./logits.ts";

export { LlamaConfig };

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
    const h = x.add(this.self_attn.forward(this.input_layernorm.forward(x), offset, cache, layer)); // [B, T, C]
    return h.add(this.mlp.forward(this.post_attention_layernorm.forward(h))); // [B, T, C]
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
   * Logits [B, T, V] for token ids [B, T] (i32). With `cache`, the tokens sit at positions
   * cache.length.. (the RoPE offset), their keys/values are appended to the cache, and attention
   * covers everything cached.
   */
  /** logits [B, T, V], or [B, logitsToKeep, V] for the last positions only (HF's logits_to_keep) */
  forward(ids: Tensor, { cache, logitsToKeep = 0 }: { cache?: AnyKVCache; logitsToKeep?: number } = {}): Tensor {
    if (ids.rank !== 2) throw new Error(`[llama] ids must be [B, T], got ${ids.describe()}`);
    const T = ids.shape[1];
    const offset = cache?.length ?? 0;
    const window = this.config.slidingWindow;
    if (window !== null && offset + T > window) {
      throw new Error(`[llama] ${offset + T} positions exceed the sliding window ${window}: sliding-window attention is not implemented`);
    }
    let x = this.model.embed_tokens.forward(ids); // [B, T, C]
    this.model.layers.items.forEach((layer, i) => (x = layer.forward(x, offset, cache, i))); // [B, T, C]
    cache?.advance(T);
    x = this.model.norm.forward(keepLast(x, logitsToKeep)); // [B, T', C]
    // through the child when untied, so a replaced lm_head (a LoRA wrapper, say) takes effect
    return this.lm_head ? this.lm_head.forward(x) : ops.linear(x, this.headWeight, null, "out_in"); // [B, T', V]
  }

  /** Mean cross-entropy of next-token prediction: logits for ids against targets [B, T]. */
  loss(ids: Tensor, targets: Tensor): Tensor {
    return ops.crossEntropy(this.forward(ids), targets);
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

  /** Writes a Hugging Face folder (config.json, model.safetensors, tokenizer files): see ./pretrained.ts. */
  async savePretrained(dir: string, options?: import("./pretrained.ts").SaveOptions): Promise<void> {
    const { savePretrained } = await import("./pretrained.ts");
    await savePretrained(this, dir, options);
  }

  /**
   * The parameter a checkpoint tensor loads into, or null for tensors HF checkpoints carry that
   * kiln recomputes: RoPE inv_freq buffers, and lm_head.weight when the head is tied.
   */
  static checkpointName(name: string, config: LlamaConfig): string | null {
    if (name.endsWith(".rotary_emb.inv_freq")) return null;
    if (name === "lm_head.weight" && config.tieWordEmbeddings) return null;
    return name;
  }
}

/** Qwen2: q/k/v biases; otherwise the Llama graph. */
export class Qwen2ForCausalLM extends LlamaForCausalLM {
  static override readonly family = "qwen2" as const;
}

/** Mistral: the Llama graph (sliding-window attention only while positions <= the window). */
export class MistralForCausalLM extends LlamaForCausalLM {
  static override readonly family = "mistral" as const;
}
