// exportGguf: a Hugging Face model folder (or a loaded kiln model) as one GGUF v3 file that llama.cpp
// runs — weights in F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K or Q6_K, the hyperparameters llama.cpp
// reads, and the tokenizer. Tensor names, layouts (GPT-2's Conv1D transposed, Llama's q/k rows
// permuted for llama.cpp's RoPE) and hyperparameters come from the model's family (src/models).
// Which tensors are quantized follows llama.cpp's tools: 1-D tensors (norms, biases) stay F32, as
// convert_hf_to_gguf.py writes them; a 2-D tensor whose rows are not a multiple of the type's block
// falls back as the converter (Q8_0/Q4_0/Q4_1 -> F16) and llama-quantize (Q4_K -> Q5_0, Q6_K -> Q8_0,
// then F16) do; every other 2-D tensor gets the requested type (llama-quantize --pure).
// Reference: llama.cpp convert_hf_to_gguf.py (prepare_tensors, set_gguf_parameters), src/llama-quant.cpp.

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { loadPretrained } from "../models/pretrained.ts";
import type { FamilyConfig, GGUFNames, ModelFamily } from "../models/family.ts";
import type { Module } from "../nn/module.ts";
import type { Backend } from "../backend/backend.ts";
import { gguf, writeGguf, type GGUFTensor, type GGUFValue } from "./gguf.ts";
import { GGML_TYPES, quantize, type KilnType } from "./gguf_quants.ts";
import { tokenizerMetadata } from "./gguf_tokenizer.ts";

/** The --quantization choices (llama.cpp's outtype / ftype names). */
export const GGUF_QUANTIZATIONS = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q4_k", "q6_k"] as const;
export type GGUFQuantization = (typeof GGUF_QUANTIZATIONS)[number];

export interface ExportGgufOptions {
  /** the weights' type (default "f16", as convert_hf_to_gguf.py) */
  quantization?: GGUFQuantization;
  /** general.name (default: the folder's name) */
  name?: string;
  /** the folder holding tokenizer.json and tokenizer_config.json (default: the model folder) */
  tokenizerDir?: string;
  /** where a folder's model is loaded to read its weights (default: the default backend) */
  backend?: Backend;
}

export interface ExportGgufResult {
  /** tensors by ggml type written ("Q4_0": 12, "F32": 9, ...) */
  types: Record<string, number>;
  /** tensors that fell back to another type, with why */
  fallbacks: string[];
}

/** A model that knows its family (every kiln model class). */
interface FamilyModel extends Module {
  readonly family: ModelFamily;
  readonly config: FamilyConfig;
}

/** llama.cpp's general.file_type (llama_ftype) for each choice. */
const FILE_TYPE: Record<GGUFQuantization, number> = { f32: 0, f16: 1, q4_0: 2, q4_1: 3, q8_0: 7, q4_k: 14, q6_k: 18, bf16: 32 };

/**
 * Writes `source` (a Hugging Face folder, or a kiln model with `tokenizerDir`) as a GGUF file at `out`.
 * @example await exportGguf("models/my-llama", "my-llama.Q4_0.gguf", { quantization: "q4_0" })
 */
export async function exportGguf(source: string | FamilyModel, out: string, options: ExportGgufOptions = {}): Promise<ExportGgufResult> {
  const quantization = options.quantization ?? "f16";
  if (!GGUF_QUANTIZATIONS.includes(quantization)) throw new Error(`[gguf] quantization ${JSON.stringify(quantization)} is not one of ${GGUF_QUANTIZATIONS.join(", ")}`);
  const pretrained = typeof source === "string" ? await loadPretrained(source, { tokenizer: false, backend: options.backend }) : undefined;
  const loaded = pretrained ? (pretrained.model as unknown as FamilyModel) : (source as FamilyModel);
  try {
    const family = loaded.family;
    const names = family.gguf as GGUFNames | undefined;
    if (!names) throw new Error(`[gguf] the ${family.name} family has no GGUF names: export is not supported for it`);
    const config = pretrained?.config ?? family.configOf(loaded);
    const tokenizerDir = options.tokenizerDir ?? (typeof source === "string" ? source : undefined);
    const name = options.name ?? (typeof source === "string" ? source.replace(/\/+$/, "").split("/").pop()! : family.name);
    const metadata = new Map<string, GGUFValue>([
      ["general.architecture", gguf.str(names.architecture)],
      ["general.type", gguf.str("model")],
      ["general.name", gguf.str(name)],
    ]);
    for (const [key, value] of Object.entries(names.hparams(config))) {
      if (value === undefined) continue;
      metadata.set(`${names.architecture}.${key}`, Number.isInteger(value) && !/eps|freq_base/.test(key) ? gguf.u32(value) : gguf.f32(value));
    }
    metadata.set(`${names.architecture}.vocab_size`, gguf.u32(config.vocabSize));
    metadata.set("general.file_type", gguf.u32(FILE_TYPE[quantization]));
    metadata.set("general.quantization_version", gguf.u32(2));
    for (const [k, v] of await tokenizerEntries(tokenizerDir, config)) metadata.set(k, v);

    const types: Record<string, number> = {};
    const fallbacks: string[] = [];
    const tensors: GGUFTensor[] = [];
    for (const [param, t] of loaded.namedParameters()) {
      const ggufName = names.tensorName(param, config);
      if (ggufName === null) throw new Error(`[gguf] parameter ${param} has no GGUF name (a model with LoRA layers? merge them first: mergeAndUnload)`);
      const layout = names.layout(param, config);
      const shape = layout?.kind === "transpose" ? [...t.shape].reverse() : [...t.shape];
      const { type, why } = tensorType(quantization, shape);
      if (why) fallbacks.push(`${ggufName}: ${why}`);
      types[type] = (types[type] ?? 0) + 1;
      tensors.push({
        name: ggufName, shape, type,
        data: async () => quantize(type, toGgufLayout(await t.data() as Float32Array, t.shape, layout), shape.at(-1) ?? 1),
      });
    }
    await writeGguf(out, metadata, tensors);
    return { types, fallbacks };
  } finally {
    if (pretrained) loaded.dispose();
  }
}

/** The ggml type of a tensor of `shape` for `quantization`, and why it is not the requested one. */
export function tensorType(quantization: GGUFQuantization, shape: readonly number[]): { type: KilnType; why?: string } {
  const wanted = quantization.toUpperCase() as KilnType;
  if (shape.length <= 1) return { type: "F32" };
  if (quantization === "f32" || quantization === "f16" || quantization === "bf16") return { type: wanted };
  const row = shape.at(-1)!;
  const fits = (t: KilnType) => row % GGML_TYPES[t].block === 0;
  if (fits(wanted)) return { type: wanted };
  const next: KilnType = wanted === "Q4_K" ? "Q5_0" : wanted === "Q6_K" ? "Q8_0" : "F16";
  const type = fits(next) ? next : "F16";
  return { type, why: `rows of ${row} are not a multiple of ${wanted}'s block ${GGML_TYPES[wanted].block}: ${type}` };
}

/**
 * kiln's values [rows, cols] in GGUF's layout: transposed (Conv1D weights), or with each head's rows
 * reordered from rotate-half pairs (s·D/2 + j) to adjacent pairs (2j + s), as LlamaModel.permute.
 */
export function toGgufLayout(data: Float32Array, shape: readonly number[], layout: ReturnType<GGUFNames["layout"]>): Float32Array {
  if (!layout) return data;
  if (layout.kind === "transpose") {
    const [R, C] = shape;
    const out = new Float32Array(data.length);
    for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) out[c * R + r] = data[r * C + c];
    return out;
  }
  return permuteRope(data, shape, layout.heads, false);
}

/** The inverse of toGgufLayout (for reading GGUF files into kiln models). */
export function fromGgufLayout(data: Float32Array, kilnShape: readonly number[], layout: ReturnType<GGUFNames["layout"]>): Float32Array {
  if (!layout) return data;
  if (layout.kind === "transpose") return toGgufLayout(data, [kilnShape[1], kilnShape[0]], layout);
  return permuteRope(data, kilnShape, layout.heads, true);
}

/** Row permutation within each head of D rows: HF (s, j) at s·D/2 + j <-> llama.cpp (j, s) at 2j + s. */
function permuteRope(data: Float32Array, shape: readonly number[], heads: number, inverse: boolean): Float32Array {
  const rows = shape[0];
  const cols = shape.length > 1 ? shape[1] : 1;
  const D = rows / heads;
  const out = new Float32Array(data.length);
  for (let h = 0; h < heads; h++) {
    for (let s = 0; s < 2; s++) {
      for (let j = 0; j < D / 2; j++) {
        const hf = h * D + s * (D / 2) + j;
        const cpp = h * D + 2 * j + s;
        const [from, to] = inverse ? [cpp, hf] : [hf, cpp];
        out.set(data.subarray(from * cols, (from + 1) * cols), to * cols);
      }
    }
  }
  return out;
}

/** tokenizer.ggml.* from a folder's tokenizer.json + tokenizer_config.json; "none" when it has none. */
async function tokenizerEntries(dir: string | undefined, config: FamilyConfig): Promise<Map<string, GGUFValue>> {
  const read = async (file: string) => (dir ? JSON.parse(await readFile(join(dir, file), "utf8").catch(() => "null")) : null);
  const json = await read("tokenizer.json");
  if (!json) return new Map([["tokenizer.ggml.model", gguf.str("none")]]);
  const tokConfig = (await read("tokenizer_config.json")) ?? {};
  const c = config as FamilyConfig & { bosTokenId?: number | number[] | null; eosTokenId?: number | number[] | null; padTokenId?: number | number[] | null };
  const first = (x: number | number[] | null | undefined) => (Array.isArray(x) ? x[0] ?? null : x ?? null);
  return tokenizerMetadata(json, tokConfig, config.vocabSize, { bos: first(c.bosTokenId), eos: first(c.eosTokenId), pad: first(c.padTokenId) });
}
