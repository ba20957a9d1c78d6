// BatchedKVCache: one forward over rows of different lengths (each row continuing its own cache)
// gives, row by row, the logits of a full recompute of that row's sequence. On the GPT-2 (learned
// positions), Llama (RoPE, grouped-query heads) and Qwen2 (q/k/v biases) fixtures, every backend.

import { describe, expect, test } from "bun:test";
import { loadPretrained, type PretrainedModel } from "../../src/models/index.ts";
import { BatchedKVCache } from "../../src/models/batched_kv_cache.ts";
import type { KVCache } from "../../src/models/kv_cache.ts";
import { KVPool } from "../../src/models/kv_pool.ts";
import { fromArray, useBackend, type Tensor } from "../../src/tensor/tensor.ts";
import { scope } from "../../src/tensor/memory.ts";
import { noGrad } from "../../src/autograd/tape.ts";
import { Rng } from "../../src/tensor/random.ts";
import { backendNames, getBackend } from "../backends.ts";

const FIXTURES = new URL("../fixtures/hf/", import.meta.url).pathname;

async function lastRow(model: PretrainedModel, rows: number[][], cache?: KVCache | BatchedKVCache): Promise<Float32Array> {
  const out = scope(() =>
    noGrad(() => {
      const x = fromArray(Int32Array.from(rows.flat()), [rows.length, rows[0].length], { dtype: "i32", backend: model.parameters()[0].backend }); // [B, T]
      return model.forward(x, { cache, logitsToKeep: 1 }) as Tensor; // [B, 1, V]
    }),
  );
  const data = (await out.data()) as Float32Array;
  out.dispose();
  return data;
}

describe.each(backendNames)("batched_kv_cache on %s", (name) => {
  for (const family of ["gpt2", "llama", "qwen2"]) {
    test(`${family}: rows of lengths 3, 7, 1 decoded together match each row's full recompute (1e-4)`, async () => {
      const backend = await getBackend(name);
      useBackend(backend);
      const { model } = await loadPretrained(FIXTURES + family, { backend, tokenizer: false });
      const V = model.config.vocabSize;
      const rng = new Rng(11);
      const seqs = [3, 7, 1].map((n) => Array.from({ length: n }, () => Math.floor(rng.next() * V)));
      const caches = seqs.map((s) => model.newCache(1, 16));
      for (const [i, s] of seqs.entries()) await lastRow(model, [s], caches[i]); // prefill, one row at a time
      for (let step = 0; step < 4; step++) {
        const next = seqs.map(() => Math.floor(rng.next() * V));
        const batched = new BatchedKVCache(caches);
        expect(batched.length).toBe(Math.max(...seqs.map((s) => s.length)));
        const got = await lastRow(model, next.map((t) => [t]), batched); // [3, 1, V]
        for (const [i, s] of seqs.entries()) {
          s.push(next[i]);
          expect(caches[i].length).toBe(s.length);
          const want = await lastRow(model, [s]); // no cache: the whole sequence
          expect(got.subarray(i * V, (i + 1) * V), `row ${i} step ${step}`).toBeAllClose(want, { atol: 1e-4, rtol: 1e-4 });
        }
      }
      for (const c of caches) c.dispose();
      model.dispose();
    });
  }

  for (const family of ["gpt2", "llama"]) {
    test(`${family} on a KVPool: slots in any order, a released slot reused, match full recompute (1e-4)`, async () => {
      const backend = await getBackend(name);
      useBackend(backend);
      const { model } = await loadPretrained(FIXTURES + family, { backend, tokenizer: false });
      const V = model.config.vocabSize;
      const probe = model.newCache(1, 1);
      const pool = new KVPool({ layers: probe.layers, slots: 4, maxLength: 24, kvHeads: probe.kvHeads, headDim: probe.headDim, backend });
      probe.dispose();
      const rng = new Rng(5);
      const seqs = new Map<number, number[]>(); // slot -> tokens
      const admit = async (n: number) => {
        const slot = pool.acquire();
        const s = Array.from({ length: n }, () => Math.floor(rng.next() * V));
        seqs.set(slot, s);
        await lastRow(model, [s], new BatchedKVCache({ pool, slots: [slot] })); // prefill
        expect(pool.lengths[slot]).toBe(n);
      };
      for (const n of [3, 7, 1]) await admit(n);
      for (let step = 0; step < 6; step++) {
        if (step === 3) {
          pool.release(1); // the 7-token sequence leaves; a new one takes its slot
          seqs.delete(1);
          await admit(2);
          expect(seqs.has(1)).toBe(true);
        }
        const slots = step === 5 ? [0] : [...seqs.keys()].reverse(); // the last step: slot 0 alone (read as a view)
        const next = slots.map(() => Math.floor(rng.next() * V));
        const bytes = backend.stats().allocatedBytes;
        const got = await lastRow(model, next.map((t) => [t]), new BatchedKVCache({ pool, slots }));
        expect(backend.stats().allocatedBytes).toBe(bytes); // a step leaves nothing behind
        for (const [i, slot] of slots.entries()) {
          const s = seqs.get(slot)!;
          s.push(next[i]);
          expect(pool.lengths[slot]).toBe(s.length);
          const want = await lastRow(model, [s]);
          expect(got.subarray(i * V, (i + 1) * V), `slot ${slot} step ${step}`).toBeAllClose(want, { atol: 1e-4, rtol: 1e-4 });
        }
      }
      pool.dispose();
      model.dispose();
    });
  }

  test("misuse is a clear error", async () => {
    const backend = await getBackend(name);
    useBackend(backend);
    const { model } = await loadPretrained(FIXTURES + "gpt2", { backend, tokenizer: false });
    const two = model.newCache(2, 8);
    const one = model.newCache(1, 8);
    expect(() => new BatchedKVCache([])).toThrow(/at least one/);
    expect(() => new BatchedKVCache([two])).toThrow(/batch 2/);
    expect(() => new BatchedKVCache([one, one])).toThrow(/appears twice/);
    one.dispose();
    expect(() => new BatchedKVCache([one])).toThrow(/disposed/);
    two.dispose();
    model.dispose();
  });
});
