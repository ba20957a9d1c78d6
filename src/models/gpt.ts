// GPT-2 (Radford et al. 2019) as Hugging Face's GPT2LMHeadModel computes it: learned positions,
// pre-LayerNorm blocks, fused qkv projection (Conv1D weights stored [in, out]), causal attention,
// tanh-GELU MLP, final LayerNorm, and an output head tied to the token embedding. Parameter
// names are Hugging Face's, so safetensors checkpoints load name-for-name. Init as nanoGPT.
// Also the gpt2 family (./family.ts): config.json both ways and the checkpoint tensor names.
// Not here: training code (src/train), tokenization (src/data), reading folders (./pretrained.ts).

import { z } from "zod";
import { Module, ModuleList } from "../nn/module.ts";
import { Dropout, Embedding, LayerNorm, Linear } from "../nn/layers.ts";
import { arange, type Tensor } from "../tensor/tensor.ts";
import { KVCache } from "./kv_cache.ts";
import { BatchedKVCache, cachedAttention, type AnyKVCache } from "./batched_kv_cache.ts";
import { keepLast } from "./logits.ts";
import { checkpoint } from "../autograd/checkpoint.ts";
import { isTraining } from "../tensor/mode.ts";
import { keep } from "../tensor/memory.ts";
import * as ops from "../ops/index.ts";
import type { Backend } from "../backend/backend.ts";
import type { GGUFNames, ModelFamily } from "./family.ts";
import { hfCommon, hfTokenIds, posInt, tokenIds, unsupported, zodCheck } from "./hf_config.ts";
import { savePretrained, type SaveOptions } from "./save.ts";

export const GPTConfig = z.object({
  vocabSize: z.number().int().positive(),
  blockSize: z.number().int().positive(),
  nLayer: z.number().int().positive(),
  nHead: z.number().int().positive(),
  nEmbd: z.number().int().positive(),
  /** dropout on embeddings and residual branches (attention probabilities are not dropped) */
  dropout: z.number().min(0).max(0.99).default(0),
  layerNormEps: z.number().positive().default(1e-5),
}).refine((c) => c.nEmbd % c.nHead === 0, { message: "nEmbd must be a multiple of nHead", path: ["nEmbd"] });
export type GPTConfig = z.infer<typeof GPTConfig>;

class CausalSelfAttention extends Module {
  readonly c_attn: Linear;
  readonly c_proj: Linear;
  readonly resid_dropout: Dropout;
  constructor(readonly config: GPTConfig, backend?: Backend) {
    super();
    const C = config.nEmbd;
    this.c_attn = this.module("c_attn", new Linear(C, 3 * C, { layout: "in_out", backend }));
    // nanoGPT: residual projections get std 0.02/sqrt(2·nLayer)
    this.c_proj = this.module("c_proj", new Linear(C, C, { layout: "in_out", backend, std: 0.02 / Math.sqrt(2 * config.nLayer) }));
    this.resid_dropout = new Dropout(config.dropout);
  }

  /** With a cache, appends this step's keys/values to `layer`'s and attends over all of them. */
  forward(x: Tensor, cache?: AnyKVCache, layer = 0): Tensor {
    const [B, T, C] = x.shape;
    const H = this.config.nHead;
    const D = C / H;
    const qkv = this.c_attn.forward(x); // [B, T, 3C]
    let y: Tensor;
    if (cache) {
      const [q, k, v] = ops.split(qkv, [C, C, C], -1).map((t) => t.reshape(B, T, H, D)); // [B, T, H, D]
      y = cachedAttention(q, k, v, cache, layer).reshape(B, T, C); // [B, T, C]
    } else if (gptAttention.packedQkv) {
      y = ops.qkvAttention(qkv, { nHead: H, causal: true }).reshape(B, T, C); // q, k, v read in place
    } else {
      const [q, k, v] = ops.split(qkv, [C, C, C], -1).map((t) => t.reshape(B, T, H, D));
      y = ops.attention(q, k, v, { causal: true }).reshape(B, T, C);
    }
    return this.resid_dropout.forward(this.c_proj.forward(y)); // [B, T, C]
  }
}

/**
 * packedQkv: attention reads q, k, v in place from c_attn's output (ops.qkvAttention); false: the
 * split copies (kept so the equivalence test and tests/bench/ab.ts can compare the two).
 */
export const gptAttention = { packedQkv: true };

class MLP extends Module {
  readonly c_fc: Linear;
  readonly c_proj: Linear;
  readonly dropout: Dropout;
  constructor(config: GPTConfig, backend?: Backend) {
    super();
    const C = config.nEmbd;
    this.c_fc = this.module("c_fc", new Linear(C, 4 * C, { layout: "in_out", backend }));
    this.c_proj = this.module("c_proj", new Linear(4 * C, C, { layout: "in_out", backend, std: 0.02 / Math.sqrt(2 * config.nLayer) }));
    this.dropout = new Dropout(config.dropout);
  }

  forward(x: Tensor): Tensor {
    return this.dropout.forward(this.c_proj.forward(ops.gelu(this.c_fc.forward(x)))); // [B, T, C]
  }
}

class Block extends Module {
  readonly ln_1: LayerNorm;
  readonly attn: CausalSelfAttention;
  readonly ln_2: LayerNorm;
  readonly mlp: MLP;
  constructor(config: GPTConfig, backend?: Backend) {
    super();
    this.ln_1 = this.module("ln_1", new LayerNorm(config.nEmbd, config.layerNormEps, { backend }));
    this.attn = this.module("attn", new CausalSelfAttention(config, backend));
    this.ln_2 = this.module("ln_2", new LayerNorm(config.nEmbd, config.layerNormEps, { backend }));
    this.mlp = this.module("mlp", new MLP(config, backend));
  }

  forward(x: Tensor, cache?: AnyKVCache, layer = 0): Tensor {
    // under autocast on WebGPU: the block's unsaved f32 activations are freed after its forward
    return ops.activationScope(x, () => {
      const a = x.add(this.attn.forward(this.ln_1.forward(x), cache, layer)); // [B, T, C]
      return a.add(this.mlp.forward(this.ln_2.forward(a))); // [B, T, C]
    });
  }
}

class Transformer extends Module {
  readonly wte: Embedding;
  readonly wpe: Embedding;
  readonly drop: Dropout;
  readonly h: ModuleList<Block>;
  readonly ln_f: LayerNorm;
  constructor(config: GPTConfig, backend?: Backend) {
    super();
    this.wte = this.module("wte", new Embedding(config.vocabSize, config.nEmbd, { backend }));
    this.wpe = this.module("wpe", new Embedding(config.blockSize, config.nEmbd, { backend }));
    this.drop = new Dropout(config.dropout);
    this.h = this.module("h", new ModuleList(Array.from({ length: config.nLayer }, () => new Block(config, backend))));
    this.ln_f = this.module("ln_f", new LayerNorm(config.nEmbd, config.layerNormEps, { backend }));
  }
}

export class GPT extends Module {
  readonly config: GPTConfig;
  readonly transformer: Transformer;
  #positions = new Map<number, Tensor>();
  /**
   * Recompute each block's forward in backward instead of keeping its activations while training
   * (HF gradient_checkpointing_enable(); see src/autograd/checkpoint.ts). Dropout masks repeat.
   */
  gradientCheckpointing = false;

  constructor(config: z.input<typeof GPTConfig>, backend?: Backend) {
    super();
    this.config = GPTConfig.parse(config);
    this.transformer = this.module("transformer", new Transformer(this.config, backend));
  }

  /**
   * Logits [B, T, V] for token ids idx [B, T] (i32), or [B, logitsToKeep, V]: only the last
   * positions, as HF's logits_to_keep, so a prefill does not project every prompt position onto the
   * vocabulary. With `cache`, the tokens sit at positions cache.length.. (learned positions from
   * there), their keys/values are appended to the cache, and attention covers everything cached.
   */
  forward(idx: Tensor, options: { cache?: AnyKVCache; logitsToKeep?: number } = {}): Tensor {
    return ops.linear(this.hiddenStates(idx, options), this.transformer.wte.weight, null, "out_in"); // [B, T', V], head tied to wte
  }

  /** The final-normed hidden states [B, T', C] the tied head projects (forward without the head). */
  hiddenStates(idx: Tensor, { cache, logitsToKeep = 0 }: { cache?: AnyKVCache; logitsToKeep?: number } = {}): Tensor {
    const [B, T] = idx.shape;
    if (idx.rank !== 2) throw new Error(`[gpt] idx must be [B, T], got ${idx.describe()}`);
    const offset = cache?.length ?? 0;
    if (offset + T > this.config.blockSize) throw new Error(`[gpt] sequence length ${offset + T} exceeds blockSize ${this.config.blockSize}`);
    const tr = this.transformer;
    const pos = cache instanceof BatchedKVCache ? cache.positionIds(T, idx.backend) // [B, T]: a position per row
      : offset === 0 ? this.positions(T, idx.backend) : arange(offset, offset + T, { backend: idx.backend }); // [T]
    let x = tr.drop.forward(tr.wte.forward(idx).add(tr.wpe.forward(pos))); // [B, T, C]
    const checkpointed = this.gradientCheckpointing && !cache && isTraining(this);
    tr.h.items.forEach((block, i) => {
      const run = (h: Tensor) => block.forward(h, cache, i);
      x = checkpointed ? checkpoint(run, [x], block.parameters()) : run(x); // [B, T, C]
    });
    cache?.advance(T);
    return tr.ln_f.forward(keepLast(x, logitsToKeep)); // [B, T', C]
  }

  /** The head as a matrix [V, C] for chunked losses: the token embedding (tied). */
  get outputHead(): { weight: Tensor; bias: Tensor | null } {
    return { weight: this.transformer.wte.weight, bias: null };
  }

  /** An empty KV cache for `batch` sequences of up to maxLength (default blockSize) positions. */
  newCache(batch: number, maxLength = this.config.blockSize): KVCache {
    const C = this.config.nEmbd;
    const H = this.config.nHead;
    return new KVCache({ layers: this.config.nLayer, batch, maxLength, kvHeads: H, headDim: C / H, backend: this.transformer.wte.weight.backend });
  }

  /** The gpt2 family: how this model reads and writes Hugging Face folders. */
  get family(): ModelFamily<GPT2Config, GPT> {
    return gpt2;
  }

  /** Writes a Hugging Face folder (config.json, model.safetensors, tokenizer files): see ./save.ts. */
  async savePretrained(dir: string, options?: SaveOptions): Promise<void> {
    await savePretrained(this, dir, options);
  }

  /** Mean cross-entropy of next-token prediction: logits for idx against targets [B, T]. */
  loss(idx: Tensor, targets: Tensor): Tensor {
    return ops.linearCrossEntropy(this.hiddenStates(idx), this.transformer.wte.weight, targets); // no [B, T, V] logits
  }

  /** Position ids 0..T-1, cached per length (kept outside scopes; freed by dispose). */
  private positions(T: number, backend: Backend): Tensor {
    let pos = this.#positions.get(T);
    if (!pos || pos.disposed || pos.backend !== backend) {
      // kept: this cache outlives the scope of the step that first needs it
      pos = keep(arange(T, undefined, { backend }));
      this.#positions.set(T, pos);
    }
    return pos;
  }

  override dispose(): void {
    super.dispose();
    for (const p of this.#positions.values()) p.dispose();
    this.#positions.clear();
  }
}


// ---------------------------------------------------------------------------------------------
// The gpt2 family: GPT2LMHeadModel's config.json and checkpoint names.
// Reference: transformers models/gpt2/configuration_gpt2.py, modeling_gpt2.py.

/** GPT-2 normalised to GPTConfig's fields (+ token ids); pass it to `new GPT(config)`. */
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

const GPT2_LAYER_TENSORS = [
  "ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight", "attn.c_proj.bias",
  "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias",
];

// llama.cpp's gpt2 names (convert_hf_to_gguf.py GPT2Model): the Conv1D weights transposed to
// [out, in], the head tied to token_embd (llama.cpp duplicates it when output.weight is absent).
const GPT2_GGUF_LAYER: Record<string, string> = {
  ln_1: "attn_norm", "attn.c_attn": "attn_qkv", "attn.c_proj": "attn_output", ln_2: "ffn_norm", "mlp.c_fc": "ffn_up", "mlp.c_proj": "ffn_down",
};
const GPT2_CONV1D = /^transformer\.h\.\d+\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$/;

const gpt2Gguf: GGUFNames<GPT2Config> = {
  architecture: "gpt2",
  tensorName: (name) => {
    const top: Record<string, string> = {
      "transformer.wte.weight": "token_embd.weight", "transformer.wpe.weight": "position_embd.weight",
      "transformer.ln_f.weight": "output_norm.weight", "transformer.ln_f.bias": "output_norm.bias",
    };
    if (top[name]) return top[name];
    const m = /^transformer\.h\.(\d+)\.(.+)\.(weight|bias)$/.exec(name);
    const part = m && GPT2_GGUF_LAYER[m[2]];
    return part ? `blk.${m[1]}.${part}.${m[3]}` : null;
  },
  layout: (name) => (GPT2_CONV1D.test(name) ? { kind: "transpose" } : null),
  hparams: (c) => ({
    context_length: c.blockSize, embedding_length: c.nEmbd, block_count: c.nLayer, feed_forward_length: 4 * c.nEmbd,
    "attention.head_count": c.nHead, "attention.layer_norm_epsilon": c.layerNormEps,
  }),
  fromHParams: (h, { vocabSize, bosTokenId, eosTokenId }) => {
    if (h.feed_forward_length !== 4 * h.embedding_length) unsupported("feed_forward_length", h.feed_forward_length, `kiln's GPT-2 MLP is 4 * embedding_length`);
    return GPT2Config.parse({
      family: "gpt2", vocabSize, blockSize: h.context_length, nLayer: h.block_count, nHead: h["attention.head_count"], nEmbd: h.embedding_length,
      dropout: 0, layerNormEps: h["attention.layer_norm_epsilon"] ?? 1e-5, bosTokenId, eosTokenId, torchDtype: null,
    });
  },
};

export const gpt2: ModelFamily<GPT2Config, GPT> = {
  name: "gpt2",
  architecture: "GPT2LMHeadModel",
  parseConfig: parseGPT2,
  toHFConfig: (c) => ({
    architectures: ["GPT2LMHeadModel"], model_type: "gpt2", vocab_size: c.vocabSize, n_positions: c.blockSize, n_ctx: c.blockSize,
    n_embd: c.nEmbd, n_layer: c.nLayer, n_head: c.nHead, n_inner: null, activation_function: "gelu_new",
    // kiln drops embeddings and residual branches, never attention probabilities
    resid_pdrop: c.dropout, embd_pdrop: c.dropout, attn_pdrop: 0, layer_norm_epsilon: c.layerNormEps,
    initializer_range: 0.02, scale_attn_weights: true, tie_word_embeddings: true, use_cache: true, ...hfTokenIds(c), torch_dtype: "float32",
  }),
  create: (config, backend) => new GPT(config, backend),
  // GPT keeps GPTConfig's fields only: token ids and dtype come from the config it was loaded with
  configOf: (model, loaded) => ({ bosTokenId: null, eosTokenId: null, torchDtype: null, ...loaded, ...model.config, family: "gpt2" }),
  hfTensorNames: (c) => [
    "transformer.wte.weight", "transformer.wpe.weight",
    ...Array.from({ length: c.nLayer }, (_, i) => GPT2_LAYER_TENSORS.map((n) => `transformer.h.${i}.${n}`)).flat(),
    "transformer.ln_f.weight", "transformer.ln_f.bias",
  ],
  // GPT2Model checkpoints (openai-community/gpt2) name weights without "transformer.", carry
  // causal-mask buffers (attn.bias, attn.masked_bias), and some carry the tied lm_head.weight
  fromHFName: (name) => {
    if (name === "lm_head.weight" || name.endsWith(".attn.bias") || name.endsWith(".attn.masked_bias")) return null;
    return name.startsWith("transformer.") ? name : `transformer.${name}`;
  },
  toHFName: (name) => name,
  gguf: gpt2Gguf,
};
