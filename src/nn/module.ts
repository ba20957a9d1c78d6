// Module: a tree of named parameters and sub-modules, as torch.nn.Module. Parameter names join the
// attribute path with dots ("transformer.h.0.attn.c_attn.weight"), so state dicts line up
// name-for-name with Hugging Face checkpoints. Parameters are kept (outside every scope) until
// the module is disposed.

import { keep } from "../tensor/memory.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { formatShape, sameShape } from "../tensor/shape.ts";

export abstract class Module {
  training = true;
  readonly #params = new Map<string, Tensor>();
  readonly #children = new Map<string, Module>();

  /** Registers a parameter (requiresGrad on, kept out of scopes) and returns it. */
  protected param(name: string, t: Tensor, requiresGrad = true): Tensor {
    t.requiresGrad = requiresGrad;
    keep(t);
    this.#params.set(name, t);
    return t;
  }

  /** Registers a sub-module and returns it. */
  protected module<M extends Module>(name: string, m: M): M {
    this.#children.set(name, m);
    return m;
  }

  /** [name, tensor] for every parameter, depth-first in registration order; shared tensors once. */
  namedParameters(prefix = "", seen = new Set<Tensor>()): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [name, t] of this.#params) {
      if (seen.has(t)) continue;
      seen.add(t);
      out.push([prefix + name, t]);
    }
    for (const [name, child] of this.#children) out.push(...child.namedParameters(`${prefix}${name}.`, seen));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Number of scalar parameters (shared tensors counted once). */
  numParameters(): number {
    return this.parameters().reduce((n, t) => n + t.size, 0);
  }

  children(): [string, Module][] {
    return [...this.#children];
  }

  /** Training mode (dropout active) for this module and all below it. */
  train(flag = true): this {
    this.training = flag;
    for (const [, child] of this.#children) child.train(flag);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** name -> parameter, every name (tied parameters appear under each of their names). */
  stateDict(prefix = ""): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [name, t] of this.#params) out.set(prefix + name, t);
    for (const [name, child] of this.#children) for (const [k, v] of child.stateDict(`${prefix}${name}.`)) out.set(k, v);
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
      t.backend.upload(t.storage.buffer, v.data);
    }
  }

  /** Frees every parameter. */
  dispose(): void {
    for (const t of this.parameters()) t.dispose();
  }
}

/** An ordered list of modules registered as "0", "1", ... (torch.nn.ModuleList). */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[];
  constructor(items: M[]) {
    super();
    this.items = items.map((m, i) => this.module(String(i), m));
  }
  get length(): number {
    return this.items.length;
  }
}
