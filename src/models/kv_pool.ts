// A pool of KV-cache slots for continuous batching: per layer, one key and one value buffer
// [slots, maxLength, Hkv, D+1] that every running sequence shares (a slot each), so that a decode
// step writes all rows' new keys with one scatter and reads all rows' histories with one gather,
// whatever the batch size. Rows of different lengths need no mask kernel: each stored key carries
// an extra "validity" column, 0 on written positions and −1e9 on empty ones, and queries get a
// matching column of ones, so q·k of an empty position is −1e9 (its softmax weight is exactly 0)
// while a written one keeps its score; the value's extra column is 0 and is dropped after attention.
// Not the single-sequence cache (kv_cache.ts) nor the per-step view (batched_kv_cache.ts).
// Reference: vLLM's preallocated KV blocks (here one block per sequence, as long as the context).

import type { Backend } from "../backend/backend.ts";
import { defaultBackend, fromArray, full, zeros, type Tensor } from "../tensor/tensor.ts";
import { keep, scope } from "../tensor/memory.ts";
import { launch, view } from "../ops/dispatch.ts";
import * as ops from "../ops/index.ts";

/** The validity column of an empty position (exactly representable: 1e9 + −1e9 = 0 in f32). */
const EMPTY = -1e9;

export interface KVPoolOptions {
  layers: number;
  /** sequences held at once */
  slots: number;
  /** positions per slot (the model's context) */
  maxLength: number;
  kvHeads: number;
  headDim: number;
  backend?: Backend;
}

export class KVPool {
  readonly layers: number;
  readonly slots: number;
  readonly maxLength: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly backend: Backend;
  /** positions stored per slot */
  readonly lengths: number[];
  readonly #k: Tensor[];
  readonly #v: Tensor[];
  readonly #free: number[];
  /** [D+1, D]: the identity with a zero last row, so linear(x, #widen, bias) appends a column */
  readonly #widen: Tensor;
  readonly #bias: Record<"query" | "key", Tensor>;
  #disposed = false;

  constructor({ layers, slots, maxLength, kvHeads, headDim, backend }: KVPoolOptions) {
    for (const [k, v] of Object.entries({ layers, slots, maxLength, kvHeads, headDim })) {
      if (!Number.isInteger(v) || v <= 0) throw new Error(`[kv_pool] ${k} must be a positive integer, got ${v}`);
    }
    this.layers = layers;
    this.slots = slots;
    this.maxLength = maxLength;
    this.kvHeads = kvHeads;
    this.headDim = headDim;
    this.backend = backend ?? defaultBackend();
    this.lengths = new Array(slots).fill(0);
    this.#free = Array.from({ length: slots }, (_, i) => slots - 1 - i);
    const rows = slots * maxLength * kvHeads;
    const emptyKeys = () =>
      keep(scope(() => ops.cat([zeros([rows, headDim], { backend: this.backend }), full([rows, 1], EMPTY, { backend: this.backend })], 1).reshape(slots, maxLength, kvHeads, headDim + 1))); // [slots, L, Hkv, D+1]
    this.#k = Array.from({ length: layers }, emptyKeys);
    this.#v = Array.from({ length: layers }, () => keep(zeros([slots, maxLength, kvHeads, headDim + 1], { backend: this.backend })));
    const D = headDim;
    const eye = new Float32Array((D + 1) * D);
    for (let i = 0; i < D; i++) eye[i * D + i] = 1;
    this.#widen = keep(fromArray(eye, [D + 1, D], { backend: this.backend })); // [D+1, D]
    const column = (value: number) => keep(fromArray(Float32Array.from({ length: D + 1 }, (_, i) => (i === D ? value : 0)), [D + 1], { backend: this.backend }));
    this.#bias = { query: column(1), key: column(-EMPTY) };
  }

  /**
   * x [..., D] with the validity column appended, [..., D+1]: 1 for queries, the marker that turns
   * an empty key row valid for keys, 0 for values. One launch (a product with the identity: exact).
   */
  widen(x: Tensor, role: "query" | "key" | "value"): Tensor {
    return ops.linear(x, this.#widen, role === "value" ? null : this.#bias[role], "out_in");
  }

  /** Device bytes held by the pool. */
  get bytes(): number {
    return 2 * this.layers * this.slots * this.maxLength * this.kvHeads * (this.headDim + 1) * 4;
  }

  get freeSlots(): number {
    return this.#free.length;
  }

  /** A free slot (empty, length 0). */
  acquire(): number {
    this.#check("acquire");
    const slot = this.#free.pop();
    if (slot === undefined) throw new Error(`[kv_pool] all ${this.slots} slots are in use`);
    return slot;
  }

  /**
   * Empties `slot` and gives it back: its first `written` positions (default: its length; the whole
   * slot after a forward pass that failed half-way) become empty again.
   */
  release(slot: number, written = this.lengths[slot]): void {
    this.#check("release");
    this.#checkSlot(slot);
    if (this.#free.includes(slot)) throw new Error(`[kv_pool] slot ${slot} is not in use`);
    const n = Math.min(written, this.maxLength);
    if (n > 0) {
      scope(() => {
        const ids = this.#ids([slot], [0], n); // [n]
        const C = this.kvHeads * (this.headDim + 1);
        const keyDelta = fromArray(Float32Array.from({ length: C }, (_, i) => (i % (this.headDim + 1) === this.headDim ? EMPTY : 0)), [1, C], { backend: this.backend }); // [1, C]: an empty row
        for (let layer = 0; layer < this.layers; layer++) {
          for (const [buffer, empty] of [[this.#k[layer], keyDelta], [this.#v[layer], null]] as const) {
            const table = buffer.reshape(this.slots * this.maxLength, C); // [slots·L, C]
            const written = ops.embedding(ids, table); // [n, C]
            const delta = empty ? empty.sub(written) : written.neg(); // empty − written
            launch("embedding_backward", [ids, delta], [table], { n, V: this.slots * this.maxLength, C }); // table[ids] += delta
          }
        }
      });
    }
    this.lengths[slot] = 0;
    this.#free.push(slot);
  }

  /**
   * Stores k, v [B, T, Hkv, D] of `layer`: row b at positions lengths[slots[b]].. of slot slots[b]
   * (lengths move on in advance()).
   */
  write(layer: number, slots: readonly number[], k: Tensor, v: Tensor): void {
    const [B, T, Hkv, D] = k.shape;
    const starts = slots.map((s) => this.lengths[s]);
    for (const [b, s] of slots.entries()) {
      if (starts[b] + T > this.maxLength) throw new Error(`[kv_pool] slot ${s}: ${starts[b]} stored + ${T} new positions exceed maxLength ${this.maxLength}`);
    }
    const ids = this.#ids(slots, starts, T); // [B·T]
    const C = Hkv * (D + 1);
    const kx = this.widen(k, "key").reshape(B * T, C); // [B·T, Hkv·(D+1)], the marker cancels the empty one
    const vx = this.widen(v, "value").reshape(B * T, C);
    const V = this.slots * this.maxLength;
    launch("embedding_backward", [ids, kx], [this.#k[layer].reshape(V, C)], { n: B * T, V, C });
    launch("embedding_backward", [ids, vx], [this.#v[layer].reshape(V, C)], { n: B * T, V, C });
  }

  /** Positions 0..S−1 of each slot in `slots` (layer's keys and values), [B, S, Hkv, D+1] each. */
  read(layer: number, slots: readonly number[], S: number): { k: Tensor; v: Tensor } {
    if (slots.length === 1 && slots[0] === 0) {
      // slot 0's first S positions are the buffers' first elements: a view, no gather (a lone sequence)
      const shape = [1, S, this.kvHeads, this.headDim + 1]; // [1, S, Hkv, D+1]
      return { k: view(this.#k[layer], shape), v: view(this.#v[layer], shape) };
    }
    const ids = this.#ids(slots, slots.map(() => 0), S); // [B·S]
    const C = this.kvHeads * (this.headDim + 1);
    const V = this.slots * this.maxLength;
    const shape = [slots.length, S, this.kvHeads, this.headDim + 1]; // [B, S, Hkv, D+1]
    return {
      k: ops.embeddingRows(ids, this.#k[layer].reshape(V, C)).reshape(...shape),
      v: ops.embeddingRows(ids, this.#v[layer].reshape(V, C)).reshape(...shape),
    };
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const t of [...this.#k, ...this.#v, this.#widen, this.#bias.query, this.#bias.key]) t.dispose();
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /** Row ids slot·maxLength + start + t, t < T, for each slot: i32 [B·T]. */
  #ids(slots: readonly number[], starts: readonly number[], T: number): Tensor {
    const ids = new Int32Array(slots.length * T);
    slots.forEach((s, b) => {
      this.#checkSlot(s);
      for (let t = 0; t < T; t++) ids[b * T + t] = s * this.maxLength + starts[b] + t;
    });
    return fromArray(ids, [ids.length], { dtype: "i32", backend: this.backend });
  }

  #checkSlot(slot: number): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.slots) throw new Error(`[kv_pool] slot ${slot} is outside 0..${this.slots - 1}`);
  }

  #check(what: string): void {
    if (this.#disposed) throw new Error(`[kv_pool] ${what} on a disposed pool`);
  }
}
