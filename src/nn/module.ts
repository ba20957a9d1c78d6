// Module: a tree of named parameters and sub-modules, as torch.nn.Module. Parameter names join the
// attribute path with dots ("transformer.h.0.attn.c_attn.weight"), so state dicts line up
// name-for-name with Hugging Face checkpoints. Parameters are kept (outside every scope) until
// the module is disposed.
//
// The tree is the module's fields, as torch's __setattr__ makes it: a field holding a Module is a
// child under the field's name whether or not it went through module() (so train()/eval() reach
// every Dropout, and a forgotten registration cannot leave one active). A field holding an array
// of modules is an error (use ModuleList: the array's items would have no names). Private (#)
// fields are not children. setSubmodule() replaces a child in the tree and in its field, so the
// parent's forward, which calls the field, runs the replacement.

import { keep } from "../tensor/memory.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { formatShape, sameShape } from "../tensor/shape.ts";
import { isHalf } from "../tensor/dtype.ts";
import { f32ArrayToBf16, f32ArrayToF16 } from "../tensor/half.ts";

export abstract class Module {
  training = true;
  readonly #params = new Map<string, Tensor>();
  readonly #children = new Map<string, Module>();

  /**
   * Registers a parameter (requiresGrad on, kept out of scopes) and returns it. A 16-bit parameter
   * (a frozen base weight: src/tensor/dtype.ts) is registered frozen.
   */
  protected param(name: string, t: Tensor, requiresGrad = true): Tensor {
    t.requiresGrad = requiresGrad && !isHalf(t.dtype);
    keep(t);
    this.#params.set(name, t);
    return t;
  }

  /**
   * Registers a sub-module under `name` and returns it. A field of the same name is the child
   * anyway; module() fixes the order (children come in registration order, then field order) and
   * names children that are not fields (ModuleList's "0", "1", ...).
   */
  protected module<M extends Module>(name: string, m: M): M {
    if (name === "" || name.includes(".")) throw new Error(`[module] child name ${JSON.stringify(name)} must be non-empty without "."`);
    this.#children.set(name, m);
    return m;
  }

  /** Unregisters the registered child `name` (not a field); returns it. */
  protected removeModule(name: string): Module | undefined {
    const m = this.#children.get(name);
    this.#children.delete(name);
    return m;
  }

  /** [name, child] for the direct sub-modules: registered ones, then Module-valued fields. */
  children(): [string, Module][] {
    const registered = new Set(this.#children.values());
    for (const [name, value] of Object.entries(this)) {
      if (value instanceof Module) {
        // a field reassigned since registration replaces the registered child of its name
        if (this.#children.has(name) ? this.#children.get(name) !== value : !registered.has(value)) this.#children.set(name, value);
      } else if (Array.isArray(value) && value.some((v) => v instanceof Module)) {
        throw new Error(`[module] ${this.constructor.name}.${name} is an array of modules: use ModuleList so each has a name (and a place in the state dict)`);
      }
    }
    return [...this.#children];
  }

  /** [path, module] for this module ("") and every module below it, depth-first; shared modules once. */
  namedModules(prefix = "", seen = new Set<Module>()): [string, Module][] {
    if (seen.has(this)) return [];
    seen.add(this);
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, child] of this.children()) out.push(...child.namedModules(prefix ? `${prefix}.${name}` : name, seen));
    return out;
  }

  /** The module at dotted `path` below this one ("" is this module), as torch's get_submodule. */
  getSubmodule(path: string): Module {
    let m: Module = this;
    if (path === "") return m;
    const parts = path.split(".");
    parts.forEach((name, i) => {
      const child = m.children().find(([n]) => n === name)?.[1];
      if (!child) {
        const at = parts.slice(0, i).join(".") || "(root)";
        const names = m.children().map(([n]) => n);
        throw new Error(`[module] no submodule ${JSON.stringify(path)}: ${at} (${m.constructor.name}) has no child "${name}"; its children: ${names.join(", ") || "none"}`);
      }
      m = child;
    });
    return m;
  }

  /**
   * Replaces the child at dotted `path` with `m` (torch's set_submodule): in the tree and in the
   * parent's field of that name, so the parent's forward calls `m`. The child must exist.
   * `m` keeps its own training mode, as in torch.
   */
  setSubmodule(path: string, m: Module): void {
    const cut = path.lastIndexOf(".");
    const parent = this.getSubmodule(cut < 0 ? "" : path.slice(0, cut));
    const name = path.slice(cut + 1);
    parent.getSubmodule(name); // throws naming the path when there is no such child
    if (Object.hasOwn(parent, name)) Object.defineProperty(parent, name, { value: m, writable: true, enumerable: true, configurable: true });
    parent.#children.set(name, m);
  }

  /** [name, tensor] for every parameter, depth-first in registration order; shared tensors once. */
  namedParameters(prefix = "", seen = new Set<Tensor>()): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [name, t] of this.#params) {
      if (seen.has(t)) continue;
      seen.add(t);
      out.push([prefix + name, t]);
    }
    for (const [name, child] of this.children()) out.push(...child.namedParameters(`${prefix}${name}.`, seen));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** The parameters that receive gradients (not frozen), in parameters() order. */
  trainableParameters(): Tensor[] {
    return this.parameters().filter((t) => t.requiresGrad);
  }

  /** Number of scalar parameters (shared tensors counted once). */
  numParameters(): number {
    return this.parameters().reduce((n, t) => n + t.size, 0);
  }

  /**
   * Stops gradients for every parameter of this module and those below it (requiresGrad off):
   * backward() computes none for them (an op whose inputs are all frozen is not recorded, and a
   * rule skips the products only a frozen input needs, e.g. a frozen Linear's dW matmul).
   */
  freeze(): this {
    for (const t of this.parameters()) t.requiresGrad = false;
    return this;
  }

  /** Makes every parameter of this module and those below it trainable again (16-bit ones cannot be: an error). */
  unfreeze(): this {
    for (const t of this.parameters()) t.requireGrad();
    return this;
  }

  /** Training mode (dropout active) for this module and all below it. */
  train(flag = true): this {
    for (const [, m] of this.namedModules()) m.training = flag;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** name -> parameter, every name (tied parameters appear under each of their names). */
  stateDict(prefix = ""): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [name, t] of this.#params) out.set(prefix + name, t);
    for (const [name, child] of this.children()) for (const [k, v] of child.stateDict(`${prefix}${name}.`)) out.set(k, v);
    return out;
  }

  /**
   * Copies values into the parameters by name. `strict` (default) requires every parameter to be
   * present and no unknown names; shapes must always match.
   */
  loadStateDict(values: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>, strict = true): void {
    const own = this.stateDict();
    if (strict) {
      const missing = [...own.keys()].filter((k) => !values.has(k));
      const unexpected = [...values.keys()].filter((k) => !own.has(k));
      if (missing.length || unexpected.length) {
        throw new Error(
          `[loadStateDict] ${missing.length ? `missing: ${missing.slice(0, 8).join(", ")}` : ""}` +
            `${missing.length && unexpected.length ? "; " : ""}${unexpected.length ? `unexpected: ${unexpected.slice(0, 8).join(", ")}` : ""}`,
        );
      }
    }
    for (const [name, t] of own) {
      const v = values.get(name);
      if (!v) continue;
      if (!sameShape(v.shape, t.shape)) {
        throw new Error(`[loadStateDict] ${name}: expected shape ${formatShape(t.shape)}, got ${formatShape(v.shape)}`);
      }
      t.backend.upload(t.storage.buffer, t.dtype === "f16" ? f32ArrayToF16(v.data) : t.dtype === "bf16" ? f32ArrayToBf16(v.data) : v.data);
    }
  }

  /** Frees every parameter. */
  dispose(): void {
    for (const t of this.parameters()) t.dispose();
  }
}

/** An ordered list of modules registered as "0", "1", ... (torch.nn.ModuleList). */
export class ModuleList<M extends Module> extends Module {
  #length: number;
  constructor(items: M[]) {
    super();
    items.forEach((m, i) => this.module(String(i), m));
    this.#length = items.length;
  }
  /** The items in order (after setSubmodule("i", m), item i is m). */
  get items(): M[] {
    return this.children().map(([, m]) => m as M);
  }
  get length(): number {
    return this.#length;
  }
}
