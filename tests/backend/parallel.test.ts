// Row-parallel launches of the wasm backend (src/backend/wasm/parallel.ts): cross_entropy, attention,
// elementwise, row and copy calls big enough to be split over the worker pool give the reference
// results (the split ones bit for bit what one thread gives), and the worker threads really take
// chunks; runGroup (independent launches, one per thread) gives bit for bit what run() gives.
// Wasm only (other backends have no thread pool). Whether a worker wakes in time to take a chunk is
// up to the OS scheduler (the main thread takes the chunks of a late worker), so the tests that check
// that workers take chunks hold the main thread's first chunk until a worker has finished one
// (withWorkerChunk): the outcome no longer depends on timing. The backends here run without a native
// BLAS (its matrix products are not wasm kernel chunks; tests/backend/blas.test.ts covers them).
import { afterAll, describe, expect, test } from "bun:test";
import { createComputeBackend } from "../../src/backend/registry.ts";
import type { WasmBackend } from "../../src/backend/wasm/index.ts";
import { PARALLEL_MIN_WORK } from "../../src/backend/wasm/parallel.ts";
import { PARALLEL_MIN_FLOPS } from "../../src/backend/wasm/matmul.ts";
import type { KernelName, KernelParams } from "../../src/backend/kernels.ts";
import { threadPool } from "../../src/backend/wasm/threads.ts";
import { expectKernel, ints, reference, seedOf, uniform } from "./harness.ts";

/**
 * Runs fn on `backend`; the first kernel export the main thread calls inside a pool job (its first
 * chunk) waits until a worker thread has finished a chunk. Expects that a job was shared and that a
 * worker ran a chunk: true whenever the pool works, however busy the machine.
 */
async function withWorkerChunk<T>(backend: WasmBackend, fn: () => Promise<T> | T): Promise<T> {
  const rt = backend.unsafeRuntime as { exports: Record<string, unknown> };
  const pool = threadPool(backend.unsafeRuntime);
  await pool.whenReady();
  const [shared0, worker0] = [pool.sharedChunks, pool.workerChunks];
  const exports = rt.exports;
  const sleep = new Int32Array(new SharedArrayBuffer(4));
  let held = false;
  const hold = () => {
    if (held || pool.sharedChunks === shared0) return;
    held = true;
    // a liveness bound, not a timing assertion: a working pool ends the wait within milliseconds
    for (let i = 0; pool.workerChunks === worker0; i++) {
      if (i === 60_000) throw new Error("no worker thread took a chunk in 60 s");
      Atomics.wait(sleep, 0, 0, 1);
    }
  };
  // the instance's exports object is frozen: the runtime gets a copy whose functions hold first
  rt.exports = Object.fromEntries(
    Object.entries(exports).map(([name, v]) => [name, typeof v === "function" ? (...args: number[]) => (hold(), v(...args)) : v]),
  );
  try {
    const out = await fn();
    expect(pool.sharedChunks).toBeGreaterThan(shared0); // the call was split
    expect(pool.workerChunks).toBeGreaterThan(worker0); // and a worker ran a chunk
    return out;
  } finally {
    rt.exports = exports;
  }
}

describe("wasm row-parallel kernels", async () => {
  const backend = (await createComputeBackend("wasm", { threads: 2, blas: "off" })) as WasmBackend;
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
    await withWorkerChunk(backend, () => expectKernel(backend, "cross_entropy", [logits, targets], [N, N], p, { atol: 2e-5, rtol: 1e-6 }));
    const [, lse] = reference("cross_entropy", [logits, targets], [N, N], p);
    const dloss = uniform(N, seedOf("par-ce-d", N, V));
    await withWorkerChunk(backend, () =>
      expectKernel(backend, "cross_entropy_backward", [logits, targets, Float32Array.from(lse), dloss], [N * V], p, { atol: 1e-6, rtol: 1e-4 }),
    );
  });

  test("attention and its backward split over the batch match reference (GQA, causal offset)", async () => {
    const [B, T, S, H, Hkv, D] = [7, 24, 40, 4, 2, 20];
    const s = (t: string) => seedOf("par-attn", t);
    const q = uniform(B * T * H * D, s("q"), -2, 2), k = uniform(B * S * Hkv * D, s("k"), -2, 2), v = uniform(B * S * Hkv * D, s("v"));
    const p = { B, T, S, H, Hkv, D, scale: 0.3, causal: 1 };
    expect(B * H * T * S * D * 4).toBeGreaterThanOrEqual(PARALLEL_MIN_WORK);
    await withWorkerChunk(backend, () => expectKernel(backend, "attention", [q, k, v], [q.length, B * H * T], p, { atol: 1e-5, rtol: 1e-5 }));
    const [out, lse] = reference("attention", [q, k, v], [q.length, B * H * T], p).map((a) => Float32Array.from(a));
    const dout = uniform(q.length, s("dout"));
    await withWorkerChunk(backend, () =>
      expectKernel(backend, "attention_backward", [dout, q, k, v, out, lse], [q.length, k.length, v.length], p, { atol: 1e-4, rtol: 1e-4 }),
    );
  });

  test("attention on strided q, k, v split over the batch: per-batch pointers step by the row strides", async () => {
    const [B, T, S, H, Hkv, D] = [7, 24, 40, 4, 2, 20];
    const qRow = H * D + 9, kvRow = Hkv * D + 5, qOff = 2, kOff = 1, vOff = 5;
    const s = (t: string) => seedOf("par-attn-strided", t);
    const qn = B * T * qRow + qOff, kn = B * S * kvRow + vOff;
    const q = uniform(qn, s("q"), -2, 2), k = uniform(kn, s("k"), -2, 2), v = uniform(kn, s("v"));
    const p = { B, T, S, H, Hkv, D, scale: 0.3, causal: 1, qRow, kvRow, qOff, kOff, vOff };
    const o = B * T * H * D;
    await withWorkerChunk(backend, () => expectKernel(backend, "attention", [q, k, v], [o, B * H * T], p, { atol: 1e-5, rtol: 1e-5 }));
    const [out, lse] = reference("attention", [q, k, v], [o, B * H * T], p).map((a) => Float32Array.from(a));
    const dout = uniform(o, s("dout"));
    const sentinels = [uniform(qn, 1, 5, 6), uniform(kn, 2, 5, 6), uniform(kn, 3, 5, 6)];
    await withWorkerChunk(backend, () =>
      expectKernel(backend, "attention_backward", [dout, q, k, v, out, lse], sentinels, p, { atol: 1e-4, rtol: 1e-4 }),
    );
  });

  // runSplit: sizes well above SPLIT_MIN_NS for each kernel's cost, odd sizes for the tails
  const single = await createComputeBackend("wasm", { threads: 1, blas: "off" });
  afterAll(() => single.dispose());
  const n = 1_500_007;
  const big = 3_100_000; // the longest input below (copy from a fused qkv)
  const xs = uniform(big, seedOf("split", "x"), -4, 4), ys = uniform(big, seedOf("split", "y"), 0.5, 2);
  const x = xs.subarray(0, n), y = ys.subarray(0, n);
  const copyView = (d: number[], s: number[], offset: number) => ({
    n: d.reduce((a, v) => a * v, 1), rank: 6, offset,
    d0: 1, d1: 1, d2: 1, d3: d[0], d4: d[1], d5: d[2], s0: 0, s1: 0, s2: 0, s3: s[0], s4: s[1], s5: s[2],
  });
  const cases: [string, KernelName, (Float32Array | Int32Array | null)[], (number | Float32Array)[], object, number][] = [
    ["fill", "fill", [], [n], { n, value: 0.25 }, 0],
    ["gelu", "gelu", [x], [n], { n }, 1e-5],
    ["gelu_with_grad", "gelu_with_grad", [x], [n, n], { n }, 1e-5],
    ["silu", "silu", [x], [n], { n }, 1e-5],
    ["affine", "affine", [x], [n], { n, alpha: 0.5, beta: -1 }, 1e-6],
    ["add full", "add", [x, y], [n], { n, na: n, nb: n }, 1e-6],
    ["mul by a repeated block", "mul", [x.subarray(0, 1_500_000), y.subarray(0, 3000)], [1_500_000], { n: 1_500_000, na: 1_500_000, nb: 3000 }, 1e-6],
    ["sub from a scalar", "sub", [y.subarray(0, 1), x], [n], { n, na: 1, nb: n }, 1e-6],
    ["layer_norm", "layer_norm", [x.subarray(0, 3001 * 300), y.subarray(0, 300), x.subarray(0, 300)], [3001 * 300, 3001, 3001], { rows: 3001, C: 300, eps: 1e-5 }, 1e-4],
    ["softmax", "softmax", [x.subarray(0, 1001 * 333)], [1001 * 333], { rows: 1001, cols: 333 }, 1e-5],
    ["sum over a last axis", "sum", [xs.subarray(0, 5003 * 300)], [5003], { outer: 5003, len: 300, inner: 1 }, 1e-4],
    ["sum over a middle axis", "sum", [xs.subarray(0, 7 * 300 * 999)], [7 * 999], { outer: 7, len: 300, inner: 999 }, 1e-4],
    ["copy (transpose)", "copy", [x.subarray(0, 1200 * 1000)], [1200 * 1000], copyView([1, 1200, 1000], [0, 1, 1200], 0), 0],
    ["copy (q of a fused qkv)", "copy", [xs.subarray(0, 40 * 64 * 1200)], [40 * 64 * 400], copyView([40, 64, 400], [64 * 1200, 1200, 1], 400), 0],
    ["copy_backward (q of a fused qkv)", "copy_backward", [x.subarray(0, 40 * 64 * 400)], [ys.slice(0, 40 * 64 * 1200)], copyView([40, 64, 400], [64 * 1200, 1200, 1], 400), 1e-6],
  ];
  test.each(cases)("%s split over the pool matches one thread bit for bit, and the reference", async (_, kernel, inputs, outputs, params, tol) => {
    await pool.whenReady();
    const before = pool.sharedChunks;
    const p = params as KernelParams<typeof kernel>;
    const got = await expectKernel(backend, kernel, inputs, outputs, p, { atol: tol, rtol: tol });
    expect(pool.sharedChunks).toBeGreaterThan(before); // it was split
    const one = await expectKernel(single, kernel, inputs, outputs, p, { atol: tol, rtol: tol });
    got.forEach((g, i) => expect(Buffer.from(g.buffer).equals(Buffer.from(one[i].buffer))).toBe(true));
  });

  test("a copy_backward whose index ranges overlap (stride 0) is not split", async () => {
    const before = pool.sharedChunks;
    const p = copyView([40, 64, 400], [0, 400, 1], 0);
    await expectKernel(backend, "copy_backward", [x.subarray(0, 40 * 64 * 400)], [y.slice(0, 64 * 400)], p, { atol: 1e-4, rtol: 1e-5 });
    expect(pool.sharedChunks).toBe(before);
  });

  test("runGroup: a linear layer's dx, dW and db, one launch per thread, bit for bit as run() one by one", async () => {
    await groupMatchesRun(backend);
  });

  test("runGroup on four threads (each matmul split in two) is bit for bit run() one by one", async () => {
    const four = (await createComputeBackend("wasm", { threads: 4, blas: "off" })) as WasmBackend;
    try {
      await groupMatchesRun(four);
    } finally {
      four.dispose();
    }
  });

  async function groupMatchesRun(backend: WasmBackend): Promise<void> {
    const pool = threadPool(backend.unsafeRuntime);
    pool.startWorkers();
    const [M, inF, outF] = [301, 131, 389]; // dx = g·W: M×outF·outF×inF; dW = gᵀ·x: outF×M·M×inF
    const s = (t: string) => seedOf("par-group", t);
    const up = (x: Float32Array) => {
      const d = backend.alloc(x.byteLength);
      backend.upload(d, x);
      return d;
    };
    const g = up(uniform(M * outF, s("g"))), w = up(uniform(outF * inF, s("w"))), x = up(uniform(M * inF, s("x")));
    const outs = () => [backend.alloc(M * inF * 4), backend.alloc(outF * inF * 4), backend.alloc(outF * 4)];
    const gemm = { batch: 1, transB: 0, strideA: 0, strideB: 0, hasBias: 0 };
    const launches = ([dx, dw, db]: ReturnType<typeof backend.alloc>[]) => [
      { kernel: "matmul" as const, inputs: [g, w, null], outputs: [dx], params: { ...gemm, M, N: inF, K: outF, transA: 0 } },
      { kernel: "matmul" as const, inputs: [g, x, null], outputs: [dw], params: { ...gemm, M: outF, N: inF, K: M, transA: 1 } },
      { kernel: "sum" as const, inputs: [g], outputs: [db], params: { outer: 1, len: M, inner: outF } },
    ];
    expect(2 * M * inF * outF).toBeGreaterThanOrEqual(PARALLEL_MIN_FLOPS);
    await pool.whenReady();
    const one = outs(), grouped = outs();
    for (const l of launches(one)) backend.run(l.kernel, l.inputs, l.outputs, l.params as never);
    await withWorkerChunk(backend, () => backend.runGroup(launches(grouped)));
    for (let i = 0; i < 3; i++) {
      expect(new Float32Array(backend.downloadSync(grouped[i]))).toEqual(new Float32Array(backend.downloadSync(one[i])));
    }
    // and the products are right (dW against the float64 oracle)
    const want = reference("matmul", [uniform(M * outF, s("g")), uniform(M * inF, s("x"))], [outF * inF], { ...gemm, M: outF, N: inF, K: M, transA: 1 });
    expect(new Float32Array(backend.downloadSync(grouped[1]))).toBeAllClose(want[0], { atol: 1e-4, rtol: 1e-4 });
    for (const b of [g, w, x, ...one, ...grouped]) backend.free(b);
  }
});
