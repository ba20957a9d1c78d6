// exportGgufAdapter: a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors,
// as kiln's saveAdapter and PEFT write it) as a llama.cpp LoRA adapter GGUF (llama-cli --lora,
// llama-server --lora, node-llama-cpp's `lora` option): for each adapted layer the base tensor's
// GGUF name + ".lora_a" [r, in] and ".lora_b" [out, r], metadata general.type = "adapter",
// adapter.type = "lora" and adapter.lora.alpha. llama.cpp scales by alpha / r, PEFT's scaling; a
// rank-stabilised adapter (use_rslora: alpha / sqrt(r)) is written with alpha·sqrt(r). Where the
// base model's GGUF layout permutes rows (Llama q/k for llama.cpp's RoPE), lora_b's rows are
// permuted the same way, so B·A lands on the permuted base weight.
// Reference: llama.cpp convert_lora_to_gguf.py, src/llama-adapter.cpp (llama_adapter_lora_init).

import { join, resolve } from "node:path";
import { loadModelConfig } from "../models/config.ts";
import { familyByName } from "../models/registry.ts";
import type { GGUFNames } from "../models/family.ts";
import { ADAPTER_WEIGHTS, readAdapterConfig } from "./peft.ts";
import { readSafetensors } from "./safetensors.ts";
import { gguf, writeGguf, type GGUFTensor, type GGUFValue } from "./gguf.ts";
import { quantize } from "./gguf_quants.ts";
import { tensorType, toGgufLayout } from "./gguf_export.ts";

/** convert_lora_to_gguf.py's --outtype choices. */
export const GGUF_ADAPTER_TYPES = ["f32", "f16", "bf16", "q8_0"] as const;
export type GGUFAdapterType = (typeof GGUF_ADAPTER_TYPES)[number];

export interface ExportGgufAdapterOptions {
  /** the base model's Hugging Face folder (default: adapter_config.json's base_model_name_or_path, when it is a local folder) */
  baseModel?: string;
  /** the tensors' type (default "f16", as convert_lora_to_gguf.py; lora_b with r not a multiple of 32 falls back to F16 for q8_0) */
  quantization?: GGUFAdapterType;
  /** general.name (default: the adapter folder's name) */
  name?: string;
}

/**
 * Writes the PEFT adapter in `adapterDir` as a llama.cpp LoRA adapter GGUF at `out`, for the base
 * model in `options.baseModel`.
 * @example await exportGgufAdapter("runs/sft/adapter", "adapter.gguf", { baseModel: "models/qwen2" })
 */
export async function exportGgufAdapter(adapterDir: string, out: string, options: ExportGgufAdapterOptions = {}): Promise<{ layers: number }> {
  const quantization = options.quantization ?? "f16";
  if (!GGUF_ADAPTER_TYPES.includes(quantization)) throw new Error(`[gguf] adapter type ${JSON.stringify(quantization)} is not one of ${GGUF_ADAPTER_TYPES.join(", ")}`);
  const cfg = await readAdapterConfig(adapterDir);
  const baseDir = options.baseModel ?? cfg.base_model_name_or_path;
  if (!baseDir) throw new Error(`[gguf] ${join(adapterDir, "adapter_config.json")} names no base model: pass the base model's folder (baseModel / --base)`);
  const config = await loadModelConfig(baseDir).catch((e: Error) => {
    throw new Error(`[gguf] the adapter's base model ${JSON.stringify(baseDir)} is not a local model folder (${e.message}): pass it (baseModel / --base)`);
  });
  const family = familyByName(config.family);
  const names = family.gguf as GGUFNames | undefined;
  if (!names) throw new Error(`[gguf] the ${family.name} family has no GGUF names: export is not supported for it`);
  if (cfg.modules_to_save?.length) throw new Error(`[gguf] modules_to_save ${JSON.stringify(cfg.modules_to_save)}: llama.cpp adapters hold LoRA pairs only`);

  const weightsPath = join(adapterDir, ADAPTER_WEIGHTS);
  const file = await readSafetensors(weightsPath);
  const pairs = new Map<string, { A?: string; B?: string }>();
  for (const key of file.names()) {
    const m = key.match(/^(?:base_model\.model\.)?(.+)\.lora_([AB])(?:\.[^.]+)?\.weight$/);
    if (!m) throw new Error(`[gguf] ${weightsPath}: tensor ${JSON.stringify(key)} is not a LoRA weight (<module>.lora_A.weight / lora_B.weight)`);
    const e = pairs.get(m[1]) ?? {};
    e[m[2] as "A" | "B"] = key;
    pairs.set(m[1], e);
  }
  const tensors: GGUFTensor[] = [];
  for (const [path, { A, B }] of pairs) {
    if (!A || !B) throw new Error(`[gguf] ${weightsPath}: ${path} has lora_${A ? "A" : "B"} but no lora_${A ? "B" : "A"}`);
    const param = family.fromHFName(`${path}.weight`, config);
    const base = param && names.tensorName(param, config);
    if (!param || !base) throw new Error(`[gguf] ${weightsPath}: ${path} is not a layer of the ${family.name} model with a GGUF tensor`);
    const layout = names.layout(param, config);
    const [a, b] = [file.info(A), file.info(B)];
    if (a.shape.length !== 2 || b.shape.length !== 2 || a.shape[0] !== cfg.r || b.shape[1] !== cfg.r) {
      throw new Error(`[gguf] ${weightsPath}: ${path} has lora_A [${a.shape}] and lora_B [${b.shape}], expected [${cfg.r}, in] and [out, ${cfg.r}]`);
    }
    for (const [suffix, key, info, permute] of [["lora_a", A, a, false], ["lora_b", B, b, true]] as const) {
      const { type } = tensorType(quantization, info.shape);
      tensors.push({
        name: `${base}.${suffix}`, shape: info.shape, type,
        data: async () => {
          const values = (await file.read(key)) as Float32Array;
          // B's rows are the base weight's output rows: they take its row permutation (never a transpose:
          // PEFT's A and B are [r, in] and [out, r] even over GPT-2's Conv1D layers)
          return quantize(type, permute && layout?.kind === "rope" ? toGgufLayout(values, info.shape, layout) : values, info.shape[1]);
        },
      });
    }
  }
  if (!tensors.length) throw new Error(`[gguf] ${weightsPath} holds no LoRA weights`);
  const alpha = cfg.use_rslora ? cfg.lora_alpha * Math.sqrt(cfg.r) : cfg.lora_alpha;
  const metadata = new Map<string, GGUFValue>([
    ["general.architecture", gguf.str(names.architecture)],
    ["general.type", gguf.str("adapter")],
    ["general.name", gguf.str(options.name ?? resolve(adapterDir).split("/").pop()!)],
    ["adapter.type", gguf.str("lora")],
    ["adapter.lora.alpha", gguf.f32(alpha)],
  ]);
  await writeGguf(out, metadata, tensors);
  return { layers: pairs.size };
}
