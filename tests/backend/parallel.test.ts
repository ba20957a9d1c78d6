// Row-parallel launches of the wasm backend (src/backend/wasm/parallel.ts): cross_entropy and
// attention calls big enough to be split over the worker pool give the reference results, and the
// worker threads really take chunks. Wasm only (other backends have no thread pool).
import { afterAll, describe, expect, test } from "bun:test";
import { createBackend } from "../../src/backend/registry.ts";
import type { WasmBackend } from "../../src/backend/wasm/index.ts";
import { PARALLEL_MIN_WORK } from "../../src/backend/wasm/parallel.ts";
import { threadPool } from "../../src/backend/wasm/threads.ts";
import { expectKernel, ints, reference, seedOf, uniform } from "./harness.ts";

describe("wasm row-parallel kernels", async () => {
  const backend = (await createBackend("wasm", { threads: 2 })) as WasmBackend;
  const pool = threadPool(backend.unsafeRuntime);
  afterAll(() => backend.dispose());

  test("cross_entropy and its backward split over rows match reference, workers take chunks", async () => {
    const [N, V] = [67, 20011];
    expect(N * V).toBeGreaterThanOrEqual(PARALLEL_MIN_WORK);
    const logits = uniform(N * V, seedOf("par-ce", N, V), -10, 10);
    const targets = ints(N, seedOf("par-ce-t", N, V), 0, V);
    targets[3] = -100;
    const p = { N, V, ignoreIndex: -100 };
    await expectKernel(backend, "cross_entropy", [logits, targets], [N, N], p, { atol: 2e-5, rtol: 1e-6 }); // starts workers
    await pool.whenReady();
    const before = pool.workerChunks;
    await expectKernel(backend, "cross_entropy", [logits, targets], [N, N], p, { atol: 2e-5, rtol: 1e-6 });
    const [, lse] = reference("cross_entropy", [logits, targets], [N, N], p);
    const dloss = uniform(N, seedOf("par-ce-d", N, V));
    await expectKernel(backend, "cross_entropy_backward", [logits, targets, Float32Array.from(lse), dloss], [N * V], p, { atol: 1e-6, rtol: 1e-4 });
    expect(pool.workerChunks).toBeGreaterThan(before);
  });

  test("attention and its backward split over the batch match reference (GQA, causal offset)", async () => {
    const [B, T, S, H, Hkv, D] = [7, 24, 40, 4, 2, 20];
    const s = (t: string) => seedOf("par-attn", t);
    const q = uniform(B * T * H * D, s("q"), -2, 2), k = uniform(B * S * Hkv * D, s("k"), -2, 2), v = uniform(B * S * Hkv * D, s("v"));
    const p = { B, T, S, H, Hkv, D, scale: 0.3, causal: 1 };
    expect(B * H * T * S * D * 4).toBeGreaterThanOrEqual(PARALLEL_MIN_WORK);
    await pool.whenReady();
    const before = pool.workerChunks;
    await expectKernel(backend, "attention", [q, k, v], [q.length, B * H * T], p, { atol: 1e-5, rtol: 1e-5 });
    const [out, lse] = reference("attention", [q, k, v], [q.length, B * H * T], p).map((a) => Float32Array.from(a));
    const dout = uniform(q.length, s("dout"));
    await expectKernel(backend, "attention_backward", [dout, q, k, v, out, lse], [q.length, k.length, v.length], p, { atol: 1e-4, rtol: 1e-4 });
    expect(pool.workerChunks).toBeGreaterThan(before);
  });
});
