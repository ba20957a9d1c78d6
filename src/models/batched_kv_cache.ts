// One forward pass over several independent sequences (continuous batching): row i of the batch
// continues its own history, at its own length. The projections and MLPs of the step run batched
// [B, T, C]; positions (learned or RoPE) start at each row's length, and attention sees each row's
// own keys and values. Two backings: a batch-1 KVCache per row (attention runs per row, over that
// cache's prefix: launches grow with B), or slots of a KVPool (one scatter, one gather and one
// attention for all rows, empty positions masked by the pool's validity column).
// Not the caches themselves (kv_cache.ts, kv_pool.ts) nor the scheduling (src/serve/batcher.ts).
// Reference: vLLM / Orca iteration-level batching (per-sequence KV, batched dense layers).

import type { Backend } from "../backend/backend.ts";
import { fromArray, type Tensor } from "../tensor/tensor.ts";
import * as ops from "../ops/index.ts";
import type { KVCache } from "./kv_cache.ts";
import type { KVPool } from "./kv_pool.ts";

/** What a model's forward accepts as `cache`: one cache for the whole batch, or one per row. */
export type AnyKVCache = KVCache | BatchedKVCache;

export class BatchedKVCache {
  /** per-row caches (absent with a pool) */
  readonly caches: readonly KVCache[];
  /** the pool and each row's slot (absent with per-row caches) */
  readonly pool: KVPool | null = null;
  readonly slots: readonly number[] = [];

  /**
   * `caches[i]` holds row i's history (each a batch-1 cache, all on one backend, none shared); or
   * `{ pool, slots }`: row i lives in slot slots[i] of the pool.
   */
  constructor(rows: readonly KVCache[] | { pool: KVPool; slots: readonly number[] }) {
    if (!Array.isArray(rows)) {
      const { pool, slots } = rows as { pool: KVPool; slots: readonly number[] };
      if (pool.disposed) throw new Error("[batched_kv_cache] the pool is disposed");
      if (slots.length === 0) throw new Error("[batched_kv_cache] needs at least one slot");
      if (new Set(slots).size !== slots.length) throw new Error(`[batched_kv_cache] a slot appears twice in ${slots.join(", ")}`);
      this.pool = pool;
      this.slots = [...slots];
      this.caches = [];
      return;
    }
    const caches = rows as readonly KVCache[];
    if (caches.length === 0) throw new Error("[batched_kv_cache] needs at least one cache");
    const first = caches[0];
    for (const [i, c] of caches.entries()) {
      if (c.disposed) throw new Error(`[batched_kv_cache] cache ${i} is disposed`);
      if (c.batch !== 1) throw new Error(`[batched_kv_cache] cache ${i} has batch ${c.batch}; each row needs its own batch-1 cache`);
      if (c.layers !== first.layers || c.backend !== first.backend) {
        throw new Error(`[batched_kv_cache] cache ${i} does not match cache 0 (layers ${c.layers} vs ${first.layers}, backend ${c.backend.name} vs ${first.backend.name})`);
      }
      if (caches.indexOf(c) !== i) throw new Error(`[batched_kv_cache] cache ${i} appears twice`);
    }
    this.caches = [...caches];
  }

  get batch(): number {
    return this.pool ? this.slots.length : this.caches.length;
  }

  /** Each row's stored length (where its next position is). */
  offsets(): number[] {
    return this.pool ? this.slots.map((s) => this.pool!.lengths[s]) : this.caches.map((c) => c.length);
  }

  /** The longest row's length: what a model checks its context limit against. */
  get length(): number {
    return Math.max(...this.offsets());
  }

  /** Position ids [B, T] (i32): row i at caches[i].length.. (for learned position embeddings). */
  positionIds(T: number, backend: Backend): Tensor {
    const ids = new Int32Array(this.batch * T);
    this.offsets().forEach((offset, i) => {
      for (let t = 0; t < T; t++) ids[i * T + t] = offset + t;
    });
    return fromArray(ids, [this.batch, T], { dtype: "i32", backend }); // [B, T]
  }

  /**
   * Rotary embeddings on x [B, T, H, D], row i at positions caches[i].length.. ("rotate half", as
   * ops.rope). Rows at different positions: x·C + swap(x)·S with per-row cos/sin tables made on the
   * host (a constant number of launches, not a rope per row).
   */
  rope(x: Tensor, theta: number): Tensor {
    this.#checkRows(x);
    const offsets = this.offsets();
    if (offsets.every((o) => o === offsets[0])) return ops.rope(x, { theta, offset: offsets[0] }); // [B, T, H, D]
    const [B, T, , D] = x.shape;
    const half = D / 2;
    const cos = new Float32Array(B * T * D);
    const sin = new Float32Array(B * T * D);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        for (let i = 0; i < half; i++) {
          const angle = (offsets[b] + t) * Math.pow(theta, (-2 * i) / D); // f64, as the rope kernels
          const row = (b * T + t) * D;
          cos[row + i] = cos[row + i + half] = Math.cos(angle);
          sin[row + i] = -Math.sin(angle); // out1 = x1·cos − x2·sin
          sin[row + i + half] = Math.sin(angle); // out2 = x2·cos + x1·sin
        }
      }
    }
    const C = fromArray(cos, [B, T, 1, D], { backend: x.backend }); // [B, T, 1, D]
    const S = fromArray(sin, [B, T, 1, D], { backend: x.backend }); // [B, T, 1, D]
    const swapped = ops.cat([ops.narrow(x, 3, half, half), ops.narrow(x, 3, 0, half)], 3); // [B, T, H, D]: (x2, x1)
    return x.mul(C).add(swapped.mul(S)); // [B, T, H, D]
  }

  /**
   * Causal attention per row: row i's k, v [1, T, Hkv, D] are appended to caches[i] at `layer`,
   * and row i of q [B, T, H, D] attends over that cache's prefix. Returns [B, T, H, D].
   */
  attend(layer: number, q: Tensor, k: Tensor, v: Tensor): Tensor {
    for (const t of [q, k, v]) this.#checkRows(t);
    if (this.pool) return this.#attendPool(this.pool, layer, q, k, v);
    if (this.batch === 1) return attendOne(this.caches[0], layer, q, k, v);
    const rows = this.caches.map((c, i) => attendOne(c, layer, ops.narrow(q, 0, i, 1), ops.narrow(k, 0, i, 1), ops.narrow(v, 0, i, 1)));
    return ops.cat(rows, 0); // [B, T, H, D]
  }

  /** Commits T new positions in every row (once per forward pass, after every layer). */
  advance(T: number): void {
    if (this.pool) for (const s of this.slots) this.pool.lengths[s] += T;
    else for (const c of this.caches) c.advance(T);
  }

  /**
   * All rows at once: store the new keys/values in their slots, gather each row's positions
   * 0..S−1 (S = the longest row after this step; a shorter row's extra positions are empty and
   * get weight 0), attend with the query's validity column of ones, drop the value's extra column.
   */
  #attendPool(pool: KVPool, layer: number, q: Tensor, k: Tensor, v: Tensor): Tensor {
    const [, T, , D] = q.shape;
    const offsets = this.offsets();
    pool.write(layer, this.slots, k, v);
    if (T > 1 && offsets.some((o) => o > 0)) {
      throw new Error("[batched_kv_cache] a pool takes several new positions per row only as a first chunk (a prefill)");
    }
    // a prefill attends over its own new positions; nothing else is stored yet
    if (T > 1) return ops.attention(q, k, v, { causal: true }); // [B, T, H, D]
    const S = Math.max(...offsets) + 1;
    const all = pool.read(layer, this.slots, S); // [B, S, Hkv, D+1] each
    const qx = pool.widen(q, "query"); // [B, 1, H, D+1]: a column of ones
    const y = ops.attention(qx, all.k, all.v, { causal: false, scale: 1 / Math.sqrt(D) }); // [B, 1, H, D+1]
    return ops.narrow(y, 3, 0, D); // [B, 1, H, D]
  }

  #checkRows(x: Tensor): void {
    if (x.rank !== 4 || x.shape[0] !== this.batch) throw new Error(`[batched_kv_cache] expected [${this.batch}, T, H, D], got ${x.describe()}`);
  }
}

/** Attention for one row with a cache: store k, v, attend over everything cached. [1, T, H, D] */
function attendOne(cache: KVCache, layer: number, q: Tensor, k: Tensor, v: Tensor): Tensor {
  const all = cache.update(layer, k, v); // [1, S, Hkv, D]
  return ops.attention(q, all.k, all.v, { causal: true }); // [1, T, H, D]
}

/**
 * Attention inside a model layer: with no cache, over q's own positions; with a KVCache, over
 * everything cached (k, v appended first); with a BatchedKVCache, per row over that row's cache.
 */
export function cachedAttention(q: Tensor, k: Tensor, v: Tensor, cache: AnyKVCache | undefined, layer: number): Tensor {
  if (cache instanceof BatchedKVCache) return cache.attend(layer, q, k, v);
  if (cache) ({ k, v } = cache.update(layer, k, v)); // [B, S, Hkv, D], S = cached + T
  return ops.attention(q, k, v, { causal: true }); // [B, T, H, D]
}
