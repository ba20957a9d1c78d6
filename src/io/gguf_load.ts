// loadGguf: a llama.cpp GGUF file (gpt2, llama, qwen2 architectures) as a kiln model with its
// weights dequantized to float32, and its tokenizer, so a user holding only a GGUF can run it,
// fine-tune it and save it as a Hugging Face folder. The family (src/models) says which GGUF tensor
// feeds which parameter and how to undo the GGUF layout (transposed Conv1D weights, RoPE-permuted
// q/k rows). The file is validated as it is read (./gguf.ts); a tensor that is missing or has the
// wrong shape is an error naming it; tensors the model does not use are reported, not loaded.
// Reference: llama.cpp src/llama-model.cpp (which tensors each architecture reads), gguf-py's reader.

import type { Backend } from "../backend/backend.ts";
import { withoutInit } from "../tensor/tensor.ts";
import { FAMILIES, type ModelConfig, type PretrainedModel } from "../models/registry.ts";
import type { GGUFHParams, GGUFNames, ModelFamily } from "../models/family.ts";
import { tokenizerFromJSON, type Tokenizer } from "../data/tokenizer.ts";
import { GGUFError, readGguf, type GGUFFile } from "./gguf.ts";
import { fromGgufLayout } from "./gguf_export.ts";
import { tokenizerFromMetadata } from "./gguf_tokenizer.ts";

export interface LoadGgufOptions {
  /** where the weights live (default: the default backend) */
  backend?: Backend;
  /** build the tokenizer from tokenizer.ggml.* (default true) */
  tokenizer?: boolean;
  /** called with one line naming the file's tensors the model does not use (default console.warn) */
  onWarning?: (message: string) => void;
}

export interface LoadedGguf {
  /** in eval mode, weights in float32 */
  model: PretrainedModel;
  config: ModelConfig;
  tokenizer?: Tokenizer;
  /** the tokenizer as tokenizer.json and tokenizer_config.json objects (write them beside savePretrained's files) */
  tokenizerFiles?: { json: unknown; config: Record<string, unknown> };
  file: GGUFFile;
}

const HPARAM_KEYS: (keyof GGUFHParams)[] = [
  "context_length", "embedding_length", "block_count", "feed_forward_length", "attention.head_count", "attention.head_count_kv",
  "attention.key_length", "attention.value_length", "attention.layer_norm_epsilon", "attention.layer_norm_rms_epsilon",
  "rope.freq_base", "rope.dimension_count",
];
const REQUIRED: (keyof GGUFHParams)[] = ["context_length", "embedding_length", "block_count", "feed_forward_length", "attention.head_count"];

/**
 * Loads a GGUF model file into a kiln model (weights dequantized to float32).
 * @example const { model, tokenizer } = await loadGguf("qwen2-0.5b.Q8_0.gguf")
 */
export async function loadGguf(path: string, { backend, tokenizer = true, onWarning = console.warn }: LoadGgufOptions = {}): Promise<LoadedGguf> {
  const file = await readGguf(path);
  const arch = file.string("general.architecture");
  const family = FAMILIES.find((f) => f.gguf?.architecture === arch) as ModelFamily<ModelConfig, PretrainedModel> | undefined;
  if (!family?.gguf) throw new GGUFError(path, `general.architecture ${JSON.stringify(arch)} is not supported (${FAMILIES.map((f) => f.gguf?.architecture).filter((a, i, all) => a && all.indexOf(a) === i).join(", ")})`);
  const names = family.gguf as GGUFNames<ModelConfig>;
  const h: Partial<GGUFHParams> = {};
  for (const key of HPARAM_KEYS) if (file.metadata.has(`${arch}.${key}`)) h[key] = file.number(`${arch}.${key}`);
  for (const key of REQUIRED) if (h[key] === undefined) throw new GGUFError(path, `metadata ${arch}.${key} is missing`);
  if (!file.has("token_embd.weight")) throw new GGUFError(path, "tensor token_embd.weight is missing");
  const vocabSize = file.info("token_embd.weight").shape[0];
  const id = (key: string) => (file.metadata.has(key) ? file.number(key) : null);
  let config: ModelConfig;
  try {
    config = names.fromHParams(h as GGUFHParams, {
      vocabSize, bosTokenId: id("tokenizer.ggml.bos_token_id"), eosTokenId: id("tokenizer.ggml.eos_token_id"), hasTensor: (n) => file.has(n),
    });
  } catch (e) {
    throw new GGUFError(path, (e as Error).message);
  }
  const model = withoutInit(() => family.create(config, backend));
  try {
    const used = new Set<string>();
    for (const [param, t] of model.namedParameters()) {
      const name = names.tensorName(param, config)!;
      if (!file.has(name)) throw new GGUFError(path, `tensor ${name} (kiln ${param}) is missing`);
      const layout = names.layout(param, config);
      const want = layout?.kind === "transpose" ? [...t.shape].reverse() : t.shape;
      const info = file.info(name);
      if (info.shape.join(",") !== want.join(",")) throw new GGUFError(path, `tensor ${name} has shape [${info.shape}], the model needs [${want}]`);
      const values = fromGgufLayout(await file.read(name), t.shape, layout);
      t.backend.upload(t.storage.buffer, values);
      used.add(name);
    }
    const unused = file.tensors.map((t) => t.name).filter((n) => !used.has(n));
    // gpt2 files may carry output.weight, a copy of the tied token_embd; rope_freqs are recomputed
    if (unused.length) onWarning(`gguf: ${path}: ${unused.length} tensors not used by the ${family.name} model: ${unused.slice(0, 8).join(", ")}${unused.length > 8 ? ", ..." : ""}`);
    let tok: Tokenizer | undefined;
    let tokenizerFiles: LoadedGguf["tokenizerFiles"];
    const tokModel = file.get("tokenizer.ggml.model");
    if (tokenizer && tokModel !== undefined && tokModel !== "none" && tokModel !== "no_vocab") {
      try {
        tokenizerFiles = tokenizerFromMetadata((k) => file.get(k) === undefined ? undefined : typeof file.get(k) === "bigint" ? Number(file.get(k)) : file.get(k), path);
        tok = tokenizerFromJSON(tokenizerFiles.json, tokenizerFiles.config, "auto", `${path} (tokenizer.ggml.*)`);
      } catch (e) {
        throw new GGUFError(path, (e as Error).message.replace(/^\[gguf\] [^:]*: /, ""));
      }
    }
    return { model: model.eval() as PretrainedModel, config, tokenizer: tok, tokenizerFiles, file };
  } catch (e) {
    model.dispose();
    throw e;
  }
}
