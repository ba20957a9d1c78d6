// One forward pass over several independent sequences (continuous batching): row i of the batch
// continues its own KVCache (batch 1, its own length). The projections and MLPs of the step run
// batched [B, T, C]; what reads a row's own history runs per row: positions (learned or RoPE)
// start at that row's length, and attention stores the row's keys/values in its cache and attends
// over that cache's prefix. No padding, no mask: each row sees exactly its own positions.
// Not the cache itself (kv_cache.ts) nor the scheduling of sequences (src/serve/batcher.ts).
// Reference: vLLM / Orca iteration-level batching (per-sequence KV, batched dense layers).

import type { Backend } from "../backend/backend.ts";
import { fromArray, type Tensor } from "../tensor/tensor.ts";
import * as ops from "../ops/index.ts";
import type { KVCache } from "./kv_cache.ts";

/** What a model's forward accepts as `cache`: one cache for the whole batch, or one per row. */
export type AnyKVCache = KVCache | BatchedKVCache;

export class BatchedKVCache {
  readonly caches: readonly KVCache[];

  /** `caches[i]` holds row i's history; each is a batch-1 cache, all on one backend, none shared. */
  constructor(caches: readonly KVCache[]) {
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
    return this.caches.length;
  }

  /** The longest row's length: what a model checks its context limit against. */
  get length(): number {
    return Math.max(...this.caches.map((c) => c.length));
  }

  /** Position ids [B, T] (i32): row i at caches[i].length.. (for learned position embeddings). */
  positionIds(T: number, backend: Backend): Tensor {
    const ids = new Int32Array(this.batch * T);
    this.caches.forEach((c, i) => {
      for (let t = 0; t < T; t++) ids[i * T + t] = c.length + t;
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
    const offsets = this.caches.map((c) => c.length);
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
    if (this.batch === 1) return attendOne(this.caches[0], layer, q, k, v);
    const rows = this.caches.map((c, i) => attendOne(c, layer, ops.narrow(q, 0, i, 1), ops.narrow(k, 0, i, 1), ops.narrow(v, 0, i, 1)));
    return ops.cat(rows, 0); // [B, T, H, D]
  }

  /** Commits T new positions in every row (once per forward pass, after every layer). */
  advance(T: number): void {
    for (const c of this.caches) c.advance(T);
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
