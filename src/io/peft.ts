// PEFT LoRA adapters on disk, both ways: adapter_config.json (LoraConfig's fields) and
// adapter_model.safetensors with PEFT's key names — the PeftModelForCausalLM prefix
// "base_model.model." + the module path + ".lora_A.weight" [r, in] / ".lora_B.weight" [out, r]
// (the adapter's name is dropped on save, as get_peft_model_state_dict does). What PEFT,
// transformers, vLLM and llama.cpp's convert_lora_to_gguf.py read. Reference: peft/config.py,
// peft/tuners/lora/config.py, peft/utils/save_and_load.py.

import { mkdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Module } from "../nn/module.ts";
import { LoRALinear } from "../nn/lora.ts";
import { Linear } from "../nn/layers.ts";
import { applyLora, loraLayers, modulesNamed, modulesToSaveOf, setAdapter } from "../nn/lora_model.ts";
import { savedModuleWrappers, type ModulesToSaveWrapper } from "../nn/modules_to_save.ts";
import { readSafetensors, writeSafetensors, type SafetensorsTensor } from "./safetensors.ts";
import { writeJsonAtomic } from "./atomic.ts";

export const ADAPTER_CONFIG = "adapter_config.json";
export const ADAPTER_WEIGHTS = "adapter_model.safetensors";
const PREFIX = "base_model.model.";

/** adapter_config.json as PEFT writes it for LoRA (fields kiln reads; others are kept as read). */
export interface PeftLoraConfig {
  peft_type: "LORA";
  task_type: string | null;
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  target_modules: string[] | string;
  bias: "none" | "all" | "lora_only";
  fan_in_fan_out: boolean;
  use_rslora: boolean;
  base_model_name_or_path: string | null;
  modules_to_save: string[] | null;
  [field: string]: unknown;
}

export interface SaveAdapterOptions {
  adapterName?: string;
  /** written as base_model_name_or_path */
  baseModelNameOrPath?: string | null;
  /** the target_modules value to record (default: the wrapped layers' last names, sorted) */
  targetModules?: string[] | string;
}

/** Writes the adapter `adapterName` of `model` as a PEFT folder. Returns the folder. */
export async function saveAdapter(model: Module, dir: string, options: SaveAdapterOptions = {}): Promise<string> {
  const name = options.adapterName ?? activeName(model);
  const layers = loraLayers(model).filter(([, l]) => l.adapters.has(name));
  if (!layers.length) throw new Error(`[peft] the model has no adapter "${name}" to save`);
  const cfg = layers[0][1].adapters.get(name)!;
  const tensors: Record<string, SafetensorsTensor> = {};
  for (const [path, l] of layers) {
    const c = l.adapters.get(name)!;
    if (c.r !== cfg.r || c.alpha !== cfg.alpha || c.useRslora !== cfg.useRslora) {
      throw new Error(`[peft] adapter "${name}" has different r/alpha across layers (${path}): PEFT's rank_pattern is not written by kiln`);
    }
    const { A, B } = l.adapterWeights(name);
    tensors[`${PREFIX}${path}.lora_A.weight`] = { dtype: "F32", shape: A.shape, data: () => A.data() as Promise<Float32Array> };
    tensors[`${PREFIX}${path}.lora_B.weight`] = { dtype: "F32", shape: B.shape, data: () => B.data() as Promise<Float32Array> };
  }
  // modules_to_save: the adapter's copy under the module's own name (PEFT drops "modules_to_save.<adapter>" on save)
  const copies = savedModuleWrappers(model).filter(([, w]) => w.copyOf(name));
  for (const [path, w] of copies) {
    for (const [pname, t] of w.copyOf(name)!.namedParameters(`${path}.`)) tensors[`${PREFIX}${pname}`] = { dtype: "F32", shape: t.shape, data: () => t.data() as Promise<Float32Array> };
  }
  const saved = copies.length ? modulesToSaveOf(model) : [];
  const fanInFanOut = layers.some(([, l]) => l.fanInFanOut);
  const config: PeftLoraConfig = {
    alpha_pattern: {}, auto_mapping: null,
    base_model_name_or_path: options.baseModelNameOrPath ?? null,
    bias: "none", fan_in_fan_out: fanInFanOut, inference_mode: true, init_lora_weights: true,
    layers_pattern: null, layers_to_transform: null,
    lora_alpha: cfg.alpha, lora_dropout: cfg.dropout, modules_to_save: saved.length ? saved : null, peft_type: "LORA", r: cfg.r,
    rank_pattern: {}, revision: null,
    target_modules: options.targetModules ?? [...new Set(layers.map(([p]) => p.split(".").pop()!))].sort(),
    task_type: "CAUSAL_LM", use_dora: false, use_rslora: cfg.useRslora,
  };
  await mkdir(dir, { recursive: true });
  await writeSafetensors(join(dir, ADAPTER_WEIGHTS), tensors, { format: "pt" });
  await writeJsonAtomic(join(dir, ADAPTER_CONFIG), config);
  return dir;
}

/** Reads and validates adapter_config.json: every problem names the file and the field. */
export async function readAdapterConfig(dir: string): Promise<PeftLoraConfig> {
  const path = join(dir, ADAPTER_CONFIG);
  const text = await readFile(path, "utf8").catch(() => {
    throw new Error(`[peft] ${path} not found: not a PEFT adapter folder`);
  });
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`[peft] ${path} is not valid JSON (${(e as Error).message})`);
  }
  const bad = (field: string, why: string): never => {
    throw new Error(`[peft] ${path}: ${field} ${why} (got ${JSON.stringify(raw[field])})`);
  };
  if (raw.peft_type !== "LORA") bad("peft_type", 'must be "LORA" (kiln reads LoRA adapters)');
  if (!Number.isInteger(raw.r) || (raw.r as number) <= 0) bad("r", "must be a positive integer");
  if (typeof raw.lora_alpha !== "number") bad("lora_alpha", "must be a number");
  const targets = raw.target_modules;
  if (!(typeof targets === "string" || (Array.isArray(targets) && targets.every((t) => typeof t === "string")))) bad("target_modules", "must be a list of module names or a regex string");
  if ((raw.bias ?? "none") !== "none") bad("bias", 'must be "none" (bias training is not supported)');
  if (raw.use_dora) bad("use_dora", "is not supported");
  for (const field of ["rank_pattern", "alpha_pattern"]) {
    const v = raw[field];
    if (v && typeof v === "object" && Object.keys(v).length) bad(field, "is not supported (one r and alpha for every layer)");
  }
  if (raw.layers_to_transform != null) bad("layers_to_transform", "is not supported");
  return {
    ...raw,
    peft_type: "LORA",
    task_type: (raw.task_type as string | null) ?? null,
    r: raw.r as number,
    lora_alpha: raw.lora_alpha as number,
    lora_dropout: typeof raw.lora_dropout === "number" ? raw.lora_dropout : 0,
    target_modules: targets as string[] | string,
    bias: "none",
    fan_in_fan_out: !!raw.fan_in_fan_out,
    use_rslora: !!raw.use_rslora,
    base_model_name_or_path: (raw.base_model_name_or_path as string | null) ?? null,
    modules_to_save: (raw.modules_to_save as string[] | null) ?? null,
  };
}

export interface LoadAdapterOptions {
  /** the name the adapter gets on the model (default "default") */
  adapterName?: string;
  /** leave its weights trainable (default false: inference, as PeftModel.from_pretrained) */
  isTrainable?: boolean;
}

/**
 * Adds the PEFT adapter in `dir` to `model` and makes it active. The layers it wraps are the ones
 * named in the weights file; every tensor must land on a layer with the config's r, and every
 * wrapped layer must get both A and B.
 */
export async function loadAdapter(model: Module, dir: string, { adapterName = "default", isTrainable = false }: LoadAdapterOptions = {}): Promise<PeftLoraConfig> {
  const config = await readAdapterConfig(dir);
  const weightsPath = join(dir, ADAPTER_WEIGHTS);
  if (!(await stat(weightsPath).then((s) => s.isFile(), () => false))) {
    throw new Error(`[peft] ${weightsPath} not found (adapter_model.bin pickles are not read: convert them to safetensors)`);
  }
  const file = await readSafetensors(weightsPath);
  const byPath = new Map<string, { A?: string; B?: string }>();
  // modules_to_save tensors: [module path, parameter name within it] -> key (saved as "<path>.<param>",
  // or with PEFT's in-memory "<path>.modules_to_save.<adapter>.<param>")
  const whole = new Map<string, { path: string; param: string }>();
  const savedPaths = (config.modules_to_save ?? []).flatMap((n) => modulesNamed(model, n).map(([p]) => p));
  for (const key of file.names()) {
    const m = key.match(/^(?:base_model\.model\.)?(.+)\.lora_([AB])(?:\.[^.]+)?\.weight$/);
    const plain = key.replace(/^base_model\.model\./, "").replace(/\.modules_to_save(\.[^.]+)?\./, ".");
    const owner = m ? undefined : savedPaths.find((p) => plain.startsWith(`${p}.`));
    if (owner !== undefined) {
      whole.set(key, { path: owner, param: plain.slice(owner.length + 1) });
      continue;
    }
    if (!m) throw new Error(`[peft] ${weightsPath}: tensor ${JSON.stringify(key)} is not a LoRA weight (<module>.lora_A.weight / lora_B.weight)`);
    const entry = byPath.get(m[1]) ?? {};
    entry[m[2] as "A" | "B"] = key;
    byPath.set(m[1], entry);
  }
  for (const [path, e] of byPath) if (!e.A || !e.B) throw new Error(`[peft] ${weightsPath}: ${path} has lora_${e.A ? "A" : "B"} but no lora_${e.A ? "B" : "A"}`);
  const paths = [...byPath.keys()];
  const modules = new Set(model.namedModules().map(([p]) => p));
  const unknown = paths.filter((p) => !modules.has(p));
  if (unknown.length) throw new Error(`[peft] ${weightsPath}: the model has no module ${unknown.slice(0, 4).join(", ")}${unknown.length > 4 ? ` (+${unknown.length - 4} more)` : ""}: an adapter for another architecture?`);
  for (const path of paths) {
    // checked before any layer is wrapped: a refused adapter leaves the model as it was
    const m = model.getSubmodule(path) as Linear | LoRALinear;
    const fanInFanOut = m instanceof LoRALinear ? m.fanInFanOut : m instanceof Linear ? m.options.layout === "in_out" : null;
    if (fanInFanOut === null) throw new Error(`[peft] ${weightsPath}: ${path} is not a Linear layer`);
    if (fanInFanOut !== config.fan_in_fan_out) {
      throw new Error(`[peft] ${join(dir, ADAPTER_CONFIG)}: fan_in_fan_out is ${config.fan_in_fan_out} but ${path} stores its weight ${fanInFanOut ? "[in, out]" : "[out, in]"}`);
    }
  }
  const fullPaths = paths.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|");
  applyLora(model, {
    r: config.r, loraAlpha: config.lora_alpha, loraDropout: config.lora_dropout, useRslora: config.use_rslora,
    targetModules: fullPaths, adapterName, modulesToSave: whole.size ? config.modules_to_save ?? [] : [],
  });
  for (const [path, keys] of byPath) {
    const layer = model.getSubmodule(path) as LoRALinear;
    const { A, B } = layer.adapterWeights(adapterName);
    for (const [key, t] of [[keys.A!, A], [keys.B!, B]] as const) {
      const info = file.info(key);
      if (info.shape.length !== 2 || info.shape[0] !== t.shape[0] || info.shape[1] !== t.shape[1]) {
        throw new Error(`[peft] ${weightsPath}: ${key} is [${info.shape.join(", ")}], expected [${t.shape.join(", ")}] (r = ${config.r})`);
      }
      t.backend.upload(t.storage.buffer, (await file.read(key)) as Float32Array);
    }
  }
  for (const [key, { path, param }] of whole) {
    const t = (model.getSubmodule(path) as ModulesToSaveWrapper).copyOf(adapterName)!.stateDict().get(param);
    if (!t) throw new Error(`[peft] ${weightsPath}: ${key}: the model's ${path} has no parameter ${param}`);
    const info = file.info(key);
    if (info.shape.join() !== t.shape.join()) throw new Error(`[peft] ${weightsPath}: ${key} is [${info.shape.join(", ")}], the model's ${path}.${param} is [${t.shape.join(", ")}]`);
    t.backend.upload(t.storage.buffer, (await file.read(key)) as Float32Array);
  }
  setAdapter(model, adapterName);
  if (!isTrainable) for (const [, l] of loraLayers(model)) {
    if (!l.adapters.has(adapterName)) continue;
    const { A, B } = l.adapterWeights(adapterName);
    A.requiresGrad = B.requiresGrad = false;
  }
  if (!isTrainable) for (const [, w] of savedModuleWrappers(model)) w.copyOf(adapterName)?.freeze();
  return config;
}

function activeName(model: Module): string {
  return loraLayers(model).find(([, l]) => l.activeAdapter !== null)?.[1].activeAdapter ?? "default";
}
