// WebGPU-specific behaviour beyond the shared conformance suite: both matmul variants (the
// register-blocked one chosen for CPU adapters and the shared-memory one chosen for GPUs) against
// the float64 oracle, the adapter rules of createBackend("auto"), pooling, in-place launches,
// and clear errors. Skipped without an adapter (KILN_TEST_WEBGPU=1 makes the adapter mandatory).
import { describe, expect, test } from "bun:test";
import type { WebGPUBackend } from "../../src/backend/webgpu/index.ts";
import { createWebGPUBackend } from "../../src/backend/webgpu/index.ts";
import { backendNames, getBackend } from "../backends.ts";
import { expectKernel, runKernel, seedOf, uniform } from "./harness.ts";

const has = backendNames.includes("webgpu");
const gpu = async () => (await getBackend("webgpu")) as WebGPUBackend;

describe.skipIf(!has)("webgpu backend", () => {
  for (const variant of ["matmul", "matmul_tiled"] as const) {
    test(`${variant} matches reference for odd shapes, transposes, bias and batch strides`, async () => {
      const backend = await gpu();
      const saved = backend.tuning;
      backend.tuning = { ...saved, matmul: variant };
      try {
        for (const [batch, M, N, K] of [[1, 1, 1, 1], [1, 5, 7, 3], [2, 33, 17, 65], [3, 70, 66, 19]]) {
          for (const transA of [0, 1]) for (const transB of [0, 1]) for (const hasBias of [0, 1]) {
            const strideB = batch > 1 && transB ? 0 : K * N; // a broadcast B as well
            const a = uniform(batch * M * K, seedOf(variant, M, N, K, transA, "a"));
            const b = uniform(batch * K * N, seedOf(variant, M, N, K, transB, "b"));
            const bias = hasBias ? uniform(N, seedOf(variant, N, "bias")) : null;
            const params = { batch, M, N, K, transA, transB, strideA: M * K, strideB, hasBias };
            await expectKernel(backend, "matmul", [a, b, bias], [batch * M * N], params, { atol: 1e-5, rtol: 1e-5 });
          }
        }
      } finally {
        backend.tuning = saved;
      }
    });
  }

  test("device names the adapter, the driver and the matmul variant in use", async () => {
    const backend = await gpu();
    expect(backend.device).toMatch(/\(.+; .+; matmul: matmul(_tiled)?\)$/);
    const kind = backend.driver.info.kind;
    expect(backend.tuning.matmul).toBe(kind === "cpu" ? "matmul" : "matmul_tiled");
  });

  test("auto never takes a CPU adapter; by name it does", async () => {
    const backend = await gpu();
    if (backend.driver.info.kind !== "cpu") return;
    expect(await createWebGPUBackend({ auto: true })).toBeNull();
    const named = await createWebGPUBackend({});
    expect(named?.name).toBe("webgpu");
    named?.dispose();
  });

  test("an output that is also an input reads the old values (in-place add)", async () => {
    const backend = await gpu();
    const x = backend.alloc(40);
    backend.upload(x, Float32Array.from({ length: 10 }, (_, i) => i));
    backend.run("add", [x, x], [x], { n: 10, na: 10, nb: 10 });
    expect(Array.from(new Float32Array(await backend.download(x)))).toEqual(Array.from({ length: 10 }, (_, i) => 2 * i));
    backend.free(x);
  });

  test("freed buffers are pooled by size class and peak memory is tracked", async () => {
    const backend = await gpu();
    backend.resetPeak();
    const before = backend.stats();
    for (let i = 0; i < 200; i++) backend.free(backend.alloc(1000 + (i % 7)));
    const after = backend.stats();
    expect(after.allocatedBytes).toBe(before.allocatedBytes);
    expect(after.peakBytes).toBeGreaterThanOrEqual(before.allocatedBytes + 1000);
    expect(after.pooledBytes).toBeLessThanOrEqual(before.pooledBytes + 2048);
  });

  test("a buffer beyond the adapter's binding limit is a clear error", async () => {
    const backend = await gpu();
    const limit = backend.driver.limits.maxStorageBufferBindingSize;
    expect(() => backend.alloc(limit + 4)).toThrow(/\[alloc\].*maxStorageBufferBindingSize/);
  });

  test("a repeated launch reuses its pipeline", async () => {
    const backend = await gpu();
    const x = uniform(33, seedOf("reuse"));
    await runKernel(backend, "relu", [x], [33], { n: 33 });
    const count = backend.pipelineCount;
    await runKernel(backend, "relu", [x], [33], { n: 33 });
    expect(backend.pipelineCount).toBe(count);
  });
});
