// KVCache: decoding with the cache (a prompt, then one token or a few at a time) gives the logits
// of a full recompute, for B = 1 (prefix views) and B = 2 (gathered prefixes); truncate and reset
// re-zero what they drop; misuse is a clear error. On a random GPT on every backend.

import { describe, expect, test } from "bun:test";
import { GPT } from "../../src/models/gpt.ts";
import { KVCache } from "../../src/models/kv_cache.ts";
import { fromArray, randn, useBackend, type Tensor } from "../../src/tensor/tensor.ts";
import { scope } from "../../src/tensor/memory.ts";
import { noGrad } from "../../src/autograd/tape.ts";
import { Rng } from "../../src/tensor/random.ts";
import { backendNames, getBackend } from "../backends.ts";

const V = 37;

function ids(rows: number[][]): Tensor {
  return fromArray(Int32Array.from(rows.flat()), [rows.length, rows[0].length], { dtype: "i32" });
}

async function logitsOf(model: GPT, rows: number[][], cache?: KVCache): Promise<Float32Array> {
  const out = scope(() => noGrad(() => model.forward(ids(rows), { cache }))); // [B, T, V]
  const data = (await out.data()) as Float32Array;
  out.dispose();
  return data;
}

/** Rows t0..t1−1 of logits [B, T, V] flattened per batch row. */
function window(all: Float32Array, B: number, T: number, t0: number, t1: number): Float32Array {
  const out = new Float32Array(B * (t1 - t0) * V);
  for (let b = 0; b < B; b++) out.set(all.subarray((b * T + t0) * V, (b * T + t1) * V), b * (t1 - t0) * V);
  return out;
}

describe.each(backendNames)("kv_cache on %s", (name) => {
  for (const B of [1, 2]) {
    test(`B=${B}: prompt + chunks + single tokens match full recompute (1e-5)`, async () => {
      useBackend(await getBackend(name));
      Rng.global.reseed(7);
      const model = new GPT({ vocabSize: V, blockSize: 24, nLayer: 2, nHead: 4, nEmbd: 32 }).eval();
      // sharper attention than the 0.02 init so that every cached position matters
      for (const [n, p] of model.namedParameters()) if (n.endsWith("c_attn.weight")) p.backend.upload(p.storage.buffer, (await scope(() => randn(p.shape, { std: 0.3 })).data()) as Float32Array);
      const rng = new Rng(3);
      const T = 13;
      const rows = Array.from({ length: B }, () => Array.from({ length: T }, () => Math.floor(rng.next() * V)));
      const full = await logitsOf(model, rows);
      const cache = model.newCache(B, 20);
      let t = 0;
      for (const step of [5, 3, 1, 1, 1, 2]) {
        const got = await logitsOf(model, rows.map((r) => r.slice(t, t + step)), cache);
        expect(got, `positions ${t}..${t + step - 1}`).toBeAllClose(window(full, B, T, t, t + step), { atol: 1e-5, rtol: 0 });
        t += step;
      }
      expect(cache.length).toBe(T);
      // truncate: recompute the last 4 positions from a shorter prefix
      cache.truncate(T - 4);
      const again = await logitsOf(model, rows.map((r) => r.slice(T - 4)), cache);
      expect(again).toBeAllClose(window(full, B, T, T - 4, T), { atol: 1e-5, rtol: 0 });
      // reset: a fresh prompt
      cache.reset();
      expect(await logitsOf(model, rows.map((r) => r.slice(0, 4)), cache)).toBeAllClose(window(full, B, T, 0, 4), { atol: 1e-5, rtol: 0 });
      cache.dispose();
      model.dispose();
    });
  }

  test("errors: too long, wrong shape, disposed", async () => {
    const backend = await getBackend(name);
    useBackend(backend);
    const cache = new KVCache({ layers: 1, batch: 1, maxLength: 4, kvHeads: 2, headDim: 8 });
    const k = scope(() => randn([1, 3, 2, 8]));
    cache.update(0, k, k).k.dispose();
    cache.advance(3);
    expect(() => cache.update(0, k, k)).toThrow(/exceed maxLength 4/);
    const bad = scope(() => randn([1, 1, 4, 8]));
    expect(() => cache.update(0, bad, bad)).toThrow(/expected f32 \[1, T, 2, 8\]/);
    expect(() => cache.update(1, bad, bad)).toThrow(/layer 1/);
    cache.dispose();
    expect(() => cache.update(0, k, k)).toThrow(/disposed/);
    k.dispose();
    bad.dispose();
  });
});
