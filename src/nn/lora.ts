// LoRA (Hu et al. 2021) as PEFT computes it: a frozen Linear plus, per named adapter, a low-rank
// update y = base(x) + B·A·dropout(x) · scale, with A [r, in] Kaiming-uniform, B [out, r] zeros and
// scale = lora_alpha / r (use_rslora: lora_alpha / √r). Dropout acts on the adapter's input only.
// The base weight keeps its Hugging Face name (`q_proj.weight`), the adapters sit beside it as PEFT
// names them in memory (`q_proj.lora_A.default.weight`), so a model with adapters still saves and
// checkpoints name-for-name. fan_in_fan_out (GPT-2's Conv1D, weights [in, out]) changes only how a
// merge adds B·A into the weight. Reference: peft/tuners/lora/layer.py (Linear), model.py.

import { Module } from "./module.ts";
import { Linear } from "./layers.ts";
import { withoutInit, type Tensor } from "../tensor/tensor.ts";
import { noGrad } from "../autograd/tape.ts";
import { scope } from "../tensor/memory.ts";
import { Rng } from "../tensor/random.ts";
import * as ops from "../ops/index.ts";
import { copyKernel } from "../ops/movement.ts";

export interface LoraOptions {
  /** rank of the update */
  r: number;
  /** scale numerator: scale = alpha / r (or alpha / √r with useRslora) */
  alpha: number;
  /** dropout on the adapter's input while training */
  dropout?: number;
  useRslora?: boolean;
  /** adapter name (PEFT's "default") */
  adapterName?: string;
  /** A's init: PEFT's default Kaiming-uniform, or init_lora_weights="gaussian" (N(0, 1/r)) */
  init?: "kaiming" | "gaussian";
  rng?: Rng;
}

export interface LoraAdapter {
  readonly r: number;
  readonly alpha: number;
  readonly scale: number;
  readonly dropout: number;
  readonly useRslora: boolean;
}

/** Holds one Linear per adapter name (PEFT's lora_A / lora_B ModuleDicts). */
export class AdapterDict extends Module {
  add(name: string, m: Linear): Linear {
    return this.module(name, m);
  }
  delete(name: string): Linear | undefined {
    return this.removeModule(name) as Linear | undefined;
  }
  get(name: string): Linear | undefined {
    return this.children().find(([n]) => n === name)?.[1] as Linear | undefined;
  }
}

export class LoRALinear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly lora_A = new AdapterDict();
  readonly lora_B = new AdapterDict();
  readonly adapters = new Map<string, LoraAdapter>();
  /** the adapter forward() applies (null: none) */
  activeAdapter: string | null = null;
  /** true inside disableAdapters(): forward is the base layer's, exactly */
  disabled = false;
  /** adapters whose update is currently added into `weight` */
  readonly merged: string[] = [];
  readonly #base: Linear;

  private constructor(base: Linear) {
    super();
    this.#base = base;
    this.weight = this.param("weight", base.weight, base.weight.requiresGrad);
    this.bias = base.bias ? this.param("bias", base.bias, base.bias.requiresGrad) : null;
  }

  /** Wraps `base` (its weight and bias are shared, not copied) with a first adapter. */
  static fromBase(base: Linear, options: LoraOptions): LoRALinear {
    if (base instanceof LoRALinear) throw new Error("[lora] the layer already has LoRA: use addAdapter");
    const layer = new LoRALinear(base);
    layer.addAdapter(options);
    return layer;
  }

  get inFeatures(): number {
    return this.#base.inFeatures;
  }
  get outFeatures(): number {
    return this.#base.outFeatures;
  }
  /** GPT-2 Conv1D weights are [in, out] (PEFT fan_in_fan_out) */
  get fanInFanOut(): boolean {
    return this.#base.options.layout === "in_out";
  }
  /** the plain Linear this layer wraps (same weight tensors) */
  get base(): Linear {
    return this.#base;
  }

  addAdapter({ r, alpha, dropout = 0, useRslora = false, adapterName = "default", init = "kaiming", rng = Rng.global }: LoraOptions): void {
    if (!Number.isInteger(r) || r <= 0) throw new Error(`[lora] r must be a positive integer, got ${r}`);
    if (!(dropout >= 0 && dropout < 1)) throw new Error(`[lora] lora_dropout must be in [0, 1), got ${dropout}`);
    if (this.adapters.has(adapterName)) throw new Error(`[lora] adapter "${adapterName}" exists already`);
    if (adapterName === "" || adapterName.includes(".")) throw new Error(`[lora] adapter name ${JSON.stringify(adapterName)} must be non-empty without "."`);
    const backend = this.weight.backend;
    // allocated without init (no draws from the global RNG), then filled as PEFT's
    // reset_lora_parameters: kaiming_uniform_(a=√5) is U(±1/√in); "gaussian" is N(0, 1/r); B = 0
    const [a, b] = withoutInit(() => [
      new Linear(this.inFeatures, r, { bias: false, backend }),
      new Linear(r, this.outFeatures, { bias: false, backend }),
    ]);
    const values = new Float32Array(r * this.inFeatures);
    if (init === "gaussian") rng.fillNormal(values, 0, 1 / r);
    else {
      const bound = 1 / Math.sqrt(this.inFeatures);
      for (let i = 0; i < values.length; i++) values[i] = (2 * rng.next() - 1) * bound;
    }
    backend.upload(a.weight.storage.buffer, values);
    backend.upload(b.weight.storage.buffer, new Float32Array(b.weight.size));
    this.lora_A.add(adapterName, a);
    this.lora_B.add(adapterName, b);
    this.adapters.set(adapterName, { r, alpha, dropout, useRslora, scale: useRslora ? alpha / Math.sqrt(r) : alpha / r });
    this.activeAdapter ??= adapterName;
  }

  /** Removes adapter `name` and frees its weights (PEFT delete_adapter); a merged one is unmerged first. */
  deleteAdapter(name: string): void {
    if (!this.adapters.has(name)) throw new Error(`[lora] no adapter "${name}"`);
    if (this.merged.includes(name)) this.unmerge();
    this.lora_A.delete(name)!.weight.dispose();
    this.lora_B.delete(name)!.weight.dispose();
    this.adapters.delete(name);
    if (this.activeAdapter === name) this.activeAdapter = null;
  }

  /** The adapter's A [r, in] and B [out, r] weights. */
  adapterWeights(name: string): { A: Tensor; B: Tensor } {
    const a = this.lora_A.get(name), b = this.lora_B.get(name);
    if (!a || !b) throw new Error(`[lora] no adapter "${name}" (have ${[...this.adapters.keys()].join(", ") || "none"})`);
    return { A: a.weight, B: b.weight };
  }

  forward(x: Tensor): Tensor {
    const y = this.#base.forward(x);
    const name = this.activeAdapter;
    if (this.disabled || name === null || this.merged.includes(name)) {
      // merged: the update is inside `weight`; disabled with merges would not be the base model
      if (this.disabled && this.merged.length) throw new Error("[lora] adapters are merged into the weights: unmerge() before disabling them");
      return y;
    }
    const cfg = this.adapters.get(name)!;
    const { A, B } = this.adapterWeights(name);
    const h = cfg.dropout > 0 && this.training ? ops.dropout(x, cfg.dropout, true) : x;
    const update = ops.linear(ops.linear(h, A, null, "out_in"), B, null, "out_in"); // [..., out]
    return ops.add(y, ops.mul(update, cfg.scale));
  }

  /** scale·B·A laid out as the weight ([out, in], or [in, out] for fan_in_fan_out). */
  delta(name: string): Tensor {
    const cfg = this.adapters.get(name);
    if (!cfg) throw new Error(`[lora] no adapter "${name}"`);
    const { A, B } = this.adapterWeights(name);
    return noGrad(() => {
      const ba = this.fanInFanOut ? ops.matmul(ops.transpose(A), ops.transpose(B)) : ops.matmul(B, A);
      return ops.mul(ba, cfg.scale);
    });
  }

  /**
   * A new f32 Linear holding weight + the named (default: active) adapter's update, and a copy of
   * the bias: how a 16-bit base merges (its 16-bit weight cannot hold the update without rounding
   * it away), by mergeAndUnload and savePretrained. This layer is left as it was.
   */
  mergedLinear(name = this.activeAdapter): Linear {
    const backend = this.weight.backend;
    const base = this.#base;
    const lin = withoutInit(() => new Linear(this.inFeatures, this.outFeatures, { bias: !!base.bias, layout: base.options.layout, backend }));
    scope(() => {
      const w = this.weight.to("f32");
      copyInto(noGrad(() => (name === null ? w : ops.add(w, this.delta(name)))), lin.weight);
      if (base.bias && lin.bias) copyInto(base.bias, lin.bias);
    });
    lin.weight.requiresGrad = this.weight.requiresGrad;
    if (lin.bias) lin.bias.requiresGrad = base.bias!.requiresGrad;
    return lin.train(this.training);
  }

  /** Adds the active (or named) adapter's update into the weight (PEFT merge). */
  merge(name = this.activeAdapter): void {
    if (name === null) return;
    if (this.merged.includes(name)) return;
    if (this.weight.dtype !== "f32") {
      throw new Error(`[lora] cannot merge into the ${this.weight.dtype} base weight ${this.weight.describe()} in place: mergeAndUnload() (merged layers become f32) or savePretrained() instead`);
    }
    scope(() => copyInto(noGrad(() => ops.add(this.weight, this.delta(name))), this.weight));
    this.merged.push(name);
  }

  /** Subtracts every merged update from the weight again (PEFT unmerge). */
  unmerge(): void {
    while (this.merged.length) {
      const name = this.merged.pop()!;
      scope(() => copyInto(noGrad(() => ops.sub(this.weight, this.delta(name))), this.weight));
    }
  }
}

/** Copies src's values into dst (same element count) on the device. */
export function copyInto(src: Tensor, dst: Tensor): void {
  if (src.size !== dst.size) throw new Error(`[lora] copy of ${src.describe()} into ${dst.describe()}`);
  noGrad(() => copyKernel(src, dst, [src.size], [1], 0));
}
