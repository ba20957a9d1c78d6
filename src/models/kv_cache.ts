// KV cache for autoregressive decoding: per layer, preallocated key and value buffers
// [B, maxLength, Hkv, D] (kept outside scopes). A forward pass appends its new keys/values with
// `update` (one copy_backward scatter into zero-filled rows) and attends over the whole prefix;
// `advance` moves `length` on once every layer has written. Inference only: no gradient flows into
// the cache. Reference: the HF transformers DynamicCache/StaticCache contract (update returns the
// full keys/values), laid out as kiln's attention takes them.

import type { Backend } from "../backend/backend.ts";
import { defaultBackend, empty, type Tensor } from "../tensor/tensor.ts";
import { keep } from "../tensor/memory.ts";
import { stridesOf } from "../tensor/shape.ts";
import { alloc, launch, view } from "../ops/dispatch.ts";
import { copyKernel } from "../ops/movement.ts";

export interface KVCacheOptions {
  layers: number;
  batch: number;
  /** the most positions the cache holds (prompt + generated tokens) */
  maxLength: number;
  kvHeads: number;
  headDim: number;
  backend?: Backend;
}

export class KVCache {
  readonly layers: number;
  readonly batch: number;
  readonly maxLength: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly backend: Backend;
  /** positions already stored (committed by advance); the next token sits at this position */
  length = 0;
  readonly #k: Tensor[];
  readonly #v: Tensor[];
  /** rows written per layer: may run ahead of `length` between update() and advance() */
  readonly #filled: number[];
  #disposed = false;

  constructor({ layers, batch, maxLength, kvHeads, headDim, backend }: KVCacheOptions) {
    for (const [k, v] of Object.entries({ layers, batch, maxLength, kvHeads, headDim })) {
      if (!Number.isInteger(v) || v <= 0) throw new Error(`[kv_cache] ${k} must be a positive integer, got ${v}`);
    }
    this.layers = layers;
    this.batch = batch;
    this.maxLength = maxLength;
    this.kvHeads = kvHeads;
    this.headDim = headDim;
    this.backend = backend ?? defaultBackend();
    const shape = [batch, maxLength, kvHeads, headDim]; // [B, maxLength, Hkv, D]
    const make = () => keep(empty(shape, "f32", this.backend));
    this.#k = Array.from({ length: layers }, make);
    this.#v = Array.from({ length: layers }, make);
    this.#filled = new Array(layers).fill(0);
    this.#zero();
  }

  /** Device bytes held by the cache. */
  get bytes(): number {
    return 2 * this.layers * this.batch * this.maxLength * this.kvHeads * this.headDim * 4;
  }

  /**
   * Stores k, v [B, T, Hkv, D] at positions length..length+T−1 of `layer` and returns the keys
   * and values of positions 0..length+T−1, [B, length+T, Hkv, D], for attention (causal, with
   * the query offset S − T). For B = 1 these are views of the cache (no copy): use them before
   * the next update of the same layer.
   */
  update(layer: number, k: Tensor, v: Tensor): { k: Tensor; v: Tensor } {
    this.#check("update");
    if (!Number.isInteger(layer) || layer < 0 || layer >= this.layers) throw new Error(`[kv_cache] layer ${layer} is outside 0..${this.layers - 1}`);
    const [B, T, Hkv, D] = k.shape;
    for (const t of [k, v]) {
      t.check("kv_cache");
      if (t.rank !== 4 || t.shape[0] !== this.batch || t.shape[2] !== this.kvHeads || t.shape[3] !== this.headDim || t.shape[1] !== T || t.dtype !== "f32") {
        throw new Error(`[kv_cache] expected f32 [${this.batch}, T, ${this.kvHeads}, ${this.headDim}] keys and values, got ${k.describe()} and ${v.describe()}`);
      }
      if (t.backend !== this.backend) throw new Error(`[kv_cache] ${t.describe()} lives on ${t.backend.name}, the cache on ${this.backend.name}`);
    }
    const start = this.length;
    const end = start + T;
    if (end > this.maxLength) throw new Error(`[kv_cache] ${start} cached + ${T} new positions exceed maxLength ${this.maxLength}`);
    // rows past `start` written before (an update without advance, or after truncate) must be zero again
    if (this.#filled[layer] > start) this.#clearFrom(layer, start);
    const strides = stridesOf([B, this.maxLength, Hkv, D]);
    copyKernel(k, this.#k[layer], [B, T, Hkv, D], strides, start * Hkv * D, true); // scatter-add into zero rows
    copyKernel(v, this.#v[layer], [B, T, Hkv, D], strides, start * Hkv * D, true);
    this.#filled[layer] = end;
    return { k: this.#prefix(this.#k[layer], end), v: this.#prefix(this.#v[layer], end) };
  }

  /** Commits T new positions (call once per forward pass, after every layer's update). */
  advance(T: number): void {
    this.#check("advance");
    if (!Number.isInteger(T) || T < 0 || this.length + T > this.maxLength) {
      throw new Error(`[kv_cache] cannot advance ${this.length} by ${T} (maxLength ${this.maxLength})`);
    }
    this.length += T;
  }

  /** Forgets positions from `length` on (keeps the first `length`): a shared prompt prefix, a rejected draft. */
  truncate(length: number): void {
    this.#check("truncate");
    if (!Number.isInteger(length) || length < 0 || length > this.length) {
      throw new Error(`[kv_cache] cannot truncate to ${length} (length ${this.length})`);
    }
    this.length = length; // rows past it are cleared lazily by the next update of each layer
  }

  /** Empties the cache (zero-fills every buffer). */
  reset(): void {
    this.#check("reset");
    this.length = 0;
    this.#zero();
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const t of [...this.#k, ...this.#v]) t.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  #check(what: string): void {
    if (this.#disposed) throw new Error(`[kv_cache] ${what} on a disposed cache`);
  }

  #zero(): void {
    const n = this.batch * this.maxLength * this.kvHeads * this.headDim;
    for (const t of [...this.#k, ...this.#v]) launch("fill", [], [t], { n, value: 0 });
    this.#filled.fill(0);
  }

  /** Positions 0..end−1 of a cache buffer, [B, end, Hkv, D]: a view when B = 1, else a gathered copy. */
  #prefix(buffer: Tensor, end: number): Tensor {
    const shape = [this.batch, end, this.kvHeads, this.headDim]; // [B, end, Hkv, D]
    if (this.batch === 1) return view(buffer, shape); // the first end·Hkv·D elements, contiguous
    const out = alloc(this.backend, shape);
    copyKernel(buffer, out, shape, stridesOf(buffer.shape), 0);
    return out;
  }

  /** Zeroes rows start.. of one layer exactly: save rows 0..start−1, fill, scatter them back. */
  #clearFrom(layer: number, start: number): void {
    const strides = stridesOf(this.#k[layer].shape);
    for (const buffer of [this.#k[layer], this.#v[layer]]) {
      const kept = start > 0 ? this.#prefix(buffer, start) : null; // [B, start, Hkv, D]
      const saved = kept && this.batch === 1 ? gatherCopy(kept) : kept; // a view would be zeroed with the buffer
      launch("fill", [], [buffer], { n: buffer.size, value: 0 });
      if (saved) copyKernel(saved, buffer, saved.shape, strides, 0, true);
      if (kept && kept !== saved) kept.dispose();
      saved?.dispose();
    }
    this.#filled[layer] = start;
  }
}

/** A contiguous copy of x (x may be a view sharing storage). */
function gatherCopy(x: Tensor): Tensor {
  const out = alloc(x.backend, x.shape);
  copyKernel(x, out, x.shape, stridesOf(x.shape), 0);
  return out;
}
