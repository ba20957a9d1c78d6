// LoRA on a whole model, as PEFT's LoraModel: choose Linear layers by target_modules, wrap them in
// LoRALinear (module surgery), freeze everything else; switch, disable, merge and unmerge adapters.
// Matching follows PEFT's check_target_module_exists: a list matches a module whose path equals an
// entry or ends with "." + entry; a string is a regular expression matched against the whole path;
// "all-linear" is every Linear but the output layer (lm_head). Reference: peft/tuners/lora/model.py,
// peft/tuners/tuners_utils.py.

import type { Module } from "./module.ts";
import { Linear } from "./layers.ts";
import { LoRALinear, type LoraOptions } from "./lora.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { fromArray } from "../tensor/tensor.ts";
import { noGrad } from "../autograd/tape.ts";
import type { Rng } from "../tensor/random.ts";
import { scope } from "../tensor/memory.ts";
import { insideWrapper, ModulesToSaveWrapper, savedModuleWrappers } from "./modules_to_save.ts";

export interface LoraConfig {
  r: number;
  loraAlpha: number;
  loraDropout?: number;
  /** module names (suffix match), a regex string, or "all-linear" */
  targetModules: string[] | string;
  useRslora?: boolean;
  adapterName?: string;
  init?: LoraOptions["init"];
  /** whole modules kept trainable and saved with the adapter (PEFT modules_to_save), by suffix */
  modulesToSave?: string[];
  /** draws A's init (default: the global RNG, as PEFT draws from torch's) */
  rng?: Rng;
}

/** The paths a target_modules value selects among the model's Linear layers (LoRA layers included). */
export function matchTargets(model: Module, targetModules: string[] | string): string[] {
  const wrapped = savedModuleWrappers(model).map(([p]) => p);
  const linear = model.namedModules().filter(([p, m]) => (m instanceof Linear || m instanceof LoRALinear) && !insideWrapper(p, wrapped));
  if (targetModules === "all-linear") return linear.map(([p]) => p).filter((p) => p !== "lm_head" && !p.endsWith(".lm_head"));
  if (typeof targetModules === "string") {
    const re = new RegExp(`^(?:${targetModules})$`);
    return linear.map(([p]) => p).filter((p) => re.test(p));
  }
  return linear.map(([p]) => p).filter((p) => targetModules.some((t) => p === t || p.endsWith(`.${t}`)));
}

/**
 * Adds adapter `adapterName` (default "default") to the layers `targetModules` selects and makes
 * it the active one. Parameters outside adapters (and modules_to_save) are frozen. Returns the
 * wrapped paths; a target that matches nothing is an error listing the model's Linear names.
 */
export function applyLora(model: Module, config: LoraConfig): string[] {
  const { r, loraAlpha, loraDropout = 0, useRslora = false, adapterName = "default", init, rng } = config;
  const paths = matchTargets(model, config.targetModules);
  if (paths.length === 0) {
    const names = [...new Set(model.namedModules().filter(([, m]) => m instanceof Linear).map(([p]) => p.split(".").pop()!))];
    throw new Error(`[lora] target_modules ${JSON.stringify(config.targetModules)} matched no Linear layer; the model's are: ${names.join(", ")}`);
  }
  if (loraLayers(model).length === 0) model.freeze();
  for (const path of paths) {
    const m = model.getSubmodule(path);
    const options = { r, alpha: loraAlpha, dropout: loraDropout, useRslora, adapterName, init, rng };
    if (m instanceof LoRALinear) m.addAdapter(options);
    else model.setSubmodule(path, LoRALinear.fromBase(m as Linear, options).train(m.training)); // the mode of the layer it replaces
  }
  for (const name of config.modulesToSave ?? []) {
    const hits = modulesNamed(model, name);
    if (!hits.length) throw new Error(`[lora] modules_to_save entry "${name}" matches no module${name === "lm_head" ? " (a head tied to the embedding is not a module of its own)" : ""}`);
    // wrapped, not overwritten: the original stays for disableAdapters and other adapters
    for (const [path, m] of hits) {
      if (m instanceof ModulesToSaveWrapper) m.addAdapter(adapterName);
      else model.setSubmodule(path, new ModulesToSaveWrapper(m, adapterName));
    }
  }
  setAdapter(model, adapterName);
  if (config.modulesToSave?.length) savedModules.set(model, [...new Set([...(savedModules.get(model) ?? []), ...config.modulesToSave])]);
  return paths;
}

/** modules_to_save entries per model: trained whole and written beside the adapter. */
const savedModules = new WeakMap<Module, string[]>();

/** The modules_to_save entries applyLora was given for this model. */
export function modulesToSaveOf(model: Module): string[] {
  return savedModules.get(model) ?? [];
}

/** [path, module] for the modules a modules_to_save entry names (the path or its last parts), not those inside a wrapper. */
export function modulesNamed(model: Module, name: string): [string, Module][] {
  const wrapped = savedModuleWrappers(model).map(([p]) => p);
  return model.namedModules().filter(([p]) => p !== "" && (p === name || p.endsWith(`.${name}`)) && !insideWrapper(p, wrapped));
}

/** [path, layer] for every LoRA layer of the model. */
export function loraLayers(model: Module): [string, LoRALinear][] {
  return model.namedModules().filter((e): e is [string, LoRALinear] => e[1] instanceof LoRALinear);
}

/** The adapter names present on the model. */
export function adapterNames(model: Module): string[] {
  return [...new Set(loraLayers(model).flatMap(([, l]) => [...l.adapters.keys()]))];
}

/**
 * Makes `name` the active adapter: forward applies it and only its weights are trainable (PEFT's
 * set_adapter). Layers without that adapter run their base weights.
 */
export function setAdapter(model: Module, name: string): void {
  const layers = loraLayers(model);
  if (!layers.some(([, l]) => l.adapters.has(name))) throw new Error(`[lora] no adapter "${name}" (have ${adapterNames(model).join(", ") || "none"})`);
  for (const [, l] of layers) {
    l.activeAdapter = l.adapters.has(name) ? name : null;
    for (const n of l.adapters.keys()) {
      const { A, B } = l.adapterWeights(n);
      A.requiresGrad = B.requiresGrad = n === name;
    }
  }
  for (const [, w] of savedModuleWrappers(model)) w.setAdapter(name);
}

/** Removes adapter `name` from every layer that has it (PEFT delete_adapter). */
export function deleteAdapter(model: Module, name: string): void {
  const layers = loraLayers(model).filter(([, l]) => l.adapters.has(name));
  if (!layers.length) throw new Error(`[lora] no adapter "${name}" (have ${adapterNames(model).join(", ") || "none"})`);
  for (const [, l] of layers) l.deleteAdapter(name);
  for (const [, w] of savedModuleWrappers(model)) w.deleteAdapter(name);
}

/** The adapter's parameters, by their model path ("model.layers.0.self_attn.q_proj.lora_A.default.weight"). */
export function adapterParameters(model: Module, name = "default"): [string, Tensor][] {
  return model.namedParameters().filter(([p]) => p.includes(`.lora_A.${name}.`) || p.includes(`.lora_B.${name}.`));
}

/** Runs `fn` with every adapter off: the base model exactly (PEFT's disable_adapter()). */
export function disableAdapters<T>(model: Module, fn: () => T): T {
  const layers: { disabled: boolean }[] = [...loraLayers(model), ...savedModuleWrappers(model)].map(([, l]) => l);
  const before = layers.map((l) => l.disabled);
  for (const l of layers) l.disabled = true;
  const restore = () => layers.forEach((l, i) => (l.disabled = before[i]));
  try {
    const out = fn();
    if (out instanceof Promise) return out.finally(restore) as T;
    restore();
    return out;
  } catch (e) {
    restore();
    throw e;
  }
}

/** Adds the active adapters' updates into the base weights (PEFT merge_adapter). */
export function mergeAdapters(model: Module): void {
  for (const [, l] of loraLayers(model)) l.merge();
}

/** Removes merged updates from the base weights again (PEFT unmerge_adapter). */
export function unmergeAdapters(model: Module): void {
  for (const [, l] of loraLayers(model)) l.unmerge();
}

export interface MergeOptions {
  /** token ids [B, T] to compare logits on (default: 1 × 16 ids spread over the vocabulary) */
  probe?: Tensor;
  /** largest allowed |merged − adapter| logit difference, relative to max(1, max |logit|) */
  tolerance?: number;
}

/**
 * Merges the active adapter into the weights and replaces every LoRA layer by its plain Linear
 * (PEFT merge_and_unload; a layer over a 16-bit base becomes an f32 Linear holding the widened
 * weight plus the update, so the check below holds at f32 precision), then checks itself on a causal LM: the merged model's logits on a probe
 * batch must equal the adapter model's within `tolerance`. On a mismatch the model is restored
 * (layers and weights) and an error says by how much — never a silently different model.
 * Other adapters on the same layers are dropped. Returns the largest logit difference seen.
 */
export async function mergeAndUnload(model: Module, { probe, tolerance = 1e-5 }: MergeOptions = {}): Promise<number> {
  const layers = loraLayers(model);
  const lm = model as Module & { forward?: (ids: Tensor) => Tensor; config?: { vocabSize?: number } };
  const canProbe = typeof lm.forward === "function" && (probe !== undefined || typeof lm.config?.vocabSize === "number");
  const backend = layers[0]?.[1].weight.backend;
  let ids = probe;
  if (canProbe && !ids && backend) {
    const V = lm.config!.vocabSize!;
    ids = fromArray(Int32Array.from({ length: 16 }, (_, i) => (i * 7919 + 11) % V), [1, 16], { backend });
  }
  const logits = async (): Promise<Float32Array> => {
    const wasTraining = model.training;
    model.eval();
    try {
      return (await scope(() => noGrad(() => lm.forward!(ids!))).data()) as Float32Array;
    } finally {
      model.train(wasTraining);
    }
  };
  const before = canProbe ? await logits() : null;
  const wrappers = savedModuleWrappers(model);
  // a 16-bit base cannot take the update in place: its layers become new f32 Linears
  const merged = layers.map(([, l]) => (l.weight.dtype === "f32" ? (l.merge(), l.base) : l.mergedLinear()));
  layers.forEach(([path], i) => model.setSubmodule(path, merged[i]));
  for (const [path, w] of wrappers) model.setSubmodule(path, w.active); // PEFT: the active adapter's copy replaces the wrapper
  let worst = 0;
  try {
    if (before) {
      const after = await logits();
      let scale = 1;
      for (let i = 0; i < before.length; i++) {
        worst = Math.max(worst, Math.abs(after[i] - before[i]));
        scale = Math.max(scale, Math.abs(before[i]));
      }
      if (!(worst <= tolerance * scale)) {
        layers.forEach(([path, l], i) => {
          model.setSubmodule(path, l);
          if (merged[i] === l.base) l.unmerge();
          else merged[i].dispose();
        });
        for (const [path, w] of wrappers) model.setSubmodule(path, w);
        throw new Error(`[lora] merge check failed: merged logits differ from the adapter's by ${worst.toExponential(3)} (allowed ${(tolerance * scale).toExponential(3)}); the model was left unmerged`);
      }
    }
  } finally {
    if (ids && ids !== probe) ids.dispose();
  }
  for (const [, l] of layers) for (const n of l.adapters.keys()) {
    const { A, B } = l.adapterWeights(n);
    A.dispose();
    B.dispose();
  }
  for (const [, w] of wrappers) for (const m of [w.original_module, ...w.modules_to_save.names().map((n) => w.copyOf(n)!)]) if (m !== w.active) m.dispose();
  // the 16-bit weights replaced by f32 ones go, unless the model still uses them elsewhere (tied)
  const live = new Set(model.parameters());
  layers.forEach(([, l], i) => {
    if (merged[i] !== l.base && !live.has(l.weight)) l.weight.dispose();
  });
  return worst;
}

/** Number of trainable and total scalar parameters (PEFT print_trainable_parameters). */
export function parameterCounts(model: Module): { trainable: number; total: number } {
  let trainable = 0, total = 0;
  for (const t of model.parameters()) {
    total += t.size;
    if (t.requiresGrad) trainable += t.size;
  }
  return { trainable, total };
}

export function formatParameterCounts(model: Module): string {
  const { trainable, total } = parameterCounts(model);
  return `trainable params: ${trainable.toLocaleString("en-US")} || all params: ${total.toLocaleString("en-US")} || trainable%: ${((100 * trainable) / Math.max(total, 1)).toFixed(4)}`;
}
