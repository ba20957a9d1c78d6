// PEFT's modules_to_save: a module trained whole beside the LoRA adapters (an lm_head, an
// embedding, a norm). As PEFT's ModulesToSaveWrapper, the module is wrapped, never overwritten:
// `original_module` keeps the base weights (frozen), and each adapter trains its own copy
// (`modules_to_save.<adapter>`). The active adapter's copy runs; with adapters disabled, or an
// active adapter that has no copy here, the original runs — so disableAdapters is the base model
// exactly. On disk the copy is saved under the module's own name (PEFT drops
// "modules_to_save.<adapter>" on save). Reference: peft/utils/other.py (ModulesToSaveWrapper),
// peft/utils/save_and_load.py.

import { Module } from "./module.ts";
import { Embedding, LayerNorm, Linear, RMSNorm } from "./layers.ts";
import { withoutInit, type Tensor } from "../tensor/tensor.ts";
import { copyInto } from "./lora.ts";
import { noGrad } from "../autograd/tape.ts";
import { scope } from "../tensor/memory.ts";

/** Holds one module per adapter name (PEFT's modules_to_save ModuleDict). */
export class ModuleDict extends Module {
  add<M extends Module>(name: string, m: M): M {
    return this.module(name, m);
  }
  get(name: string): Module | undefined {
    return this.children().find(([n]) => n === name)?.[1];
  }
  delete(name: string): Module | undefined {
    return this.removeModule(name);
  }
  names(): string[] {
    return this.children().map(([n]) => n);
  }
}

export class ModulesToSaveWrapper extends Module {
  readonly original_module: Module;
  readonly modules_to_save = new ModuleDict();
  /** the adapter whose copy forward() runs (null: the original) */
  activeAdapter: string | null = null;
  /** true inside disableAdapters(): forward is the original module's */
  disabled = false;

  constructor(original: Module, adapterName: string) {
    super();
    if (original instanceof ModulesToSaveWrapper) throw new Error("[lora] the module is already wrapped for modules_to_save: use addAdapter");
    this.original_module = this.module("original_module", original.freeze());
    this.module("modules_to_save", this.modules_to_save);
    this.training = original.training;
    this.addAdapter(adapterName);
  }

  /** Adds a trainable copy of the original module for `name` (PEFT's update()). */
  addAdapter(name: string): void {
    if (this.modules_to_save.get(name)) return;
    const copy = cloneLayer(this.original_module).train(this.original_module.training);
    this.modules_to_save.add(name, copy);
    this.activeAdapter ??= name;
  }

  deleteAdapter(name: string): void {
    const m = this.modules_to_save.delete(name);
    m?.dispose();
    if (this.activeAdapter === name) this.activeAdapter = null;
  }

  /** Makes `name`'s copy the running one and the only trainable one; without a copy here, the original runs. */
  setAdapter(name: string): void {
    this.activeAdapter = this.modules_to_save.get(name) ? name : null;
    for (const n of this.modules_to_save.names()) {
      const m = this.modules_to_save.get(n)!;
      if (n === this.activeAdapter) m.unfreeze();
      else m.freeze();
    }
  }

  /** The module forward() runs now. */
  get active(): Module {
    if (this.disabled || this.activeAdapter === null) return this.original_module;
    return this.modules_to_save.get(this.activeAdapter)!;
  }

  /** The copy trained for adapter `name`, if any. */
  copyOf(name: string): Module | undefined {
    return this.modules_to_save.get(name);
  }

  /** The running module's weight (models read lm_head.weight for the output projection). */
  get weight(): Tensor {
    return (this.active as Module & { weight: Tensor }).weight;
  }
  get bias(): Tensor | null {
    return (this.active as Module & { bias?: Tensor | null }).bias ?? null;
  }

  forward(...args: unknown[]): Tensor {
    return (this.active as Module & { forward(...a: unknown[]): Tensor }).forward(...args);
  }
}

/** A new layer like `m` (same class and settings) holding a copy of its values, trainable. */
export function cloneLayer(m: Module): Module {
  const backend = m.parameters()[0]?.backend;
  const copy = withoutInit(() => {
    if (m instanceof Linear) return new Linear(m.inFeatures, m.outFeatures, { ...m.options, backend });
    if (m instanceof Embedding) return new Embedding(m.numEmbeddings, m.dim, { backend });
    if (m instanceof RMSNorm) return new RMSNorm(m.dim, m.eps, { backend });
    if (m instanceof LayerNorm) return new LayerNorm(m.dim, m.eps, { backend });
    throw new Error(`[lora] modules_to_save: ${m.constructor.name} modules cannot be copied (Linear, Embedding, RMSNorm and LayerNorm can)`);
  });
  const from = m.stateDict();
  // the copy trains, so it is float32 even where the frozen base is stored 16-bit
  for (const [name, t] of copy.stateDict()) {
    const src = from.get(name)!;
    scope(() => copyInto(src.dtype === t.dtype ? src : noGrad(() => src.to(t.dtype)), t));
  }
  return copy.unfreeze();
}

/** [path, wrapper] for every modules_to_save wrapper of the model. */
export function savedModuleWrappers(model: Module): [string, ModulesToSaveWrapper][] {
  return model.namedModules().filter((e): e is [string, ModulesToSaveWrapper] => e[1] instanceof ModulesToSaveWrapper);
}

/** Whether `path` lies inside a wrapper (its original or a copy), where LoRA targets and modules_to_save entries do not reach. */
export function insideWrapper(path: string, wrapperPaths: string[]): boolean {
  return wrapperPaths.some((w) => path.startsWith(`${w}.`));
}
