// WebGPU-specific behaviour beyond the shared conformance suite: the adapter rules of
// createComputeBackend("auto"), pooling, in-place launches, and clear errors (the kernel variants are
// in webgpu_variants.test.ts). Skipped without an adapter (KILN_TEST_WEBGPU=1 makes the adapter
// mandatory).
import { describe, expect, test } from "bun:test";
import type { WebGPUBackend } from "../../src/backend/webgpu/index.ts";
import { createWebGPUBackend } from "../../src/backend/webgpu/index.ts";
import { backendNames, getBackend } from "../backends.ts";
import { runKernel, seedOf, uniform } from "./harness.ts";

const has = backendNames.includes("webgpu");
const gpu = async () => (await getBackend("webgpu")) as WebGPUBackend;

describe.skipIf(!has)("webgpu backend", () => {
  test("device names the adapter, the driver and the kernel variants in use", async () => {
    const backend = await gpu();
    expect(backend.device).toMatch(/\(.+; .+; matmul: matmul(_tiled)?, .+\)$/);
  });

  test("auto never takes a CPU adapter; by name it does", async () => {
    const backend = await gpu();
    const auto = await createWebGPUBackend({ auto: true });
    if (backend.driver.info.kind === "cpu") expect(auto).toBeNull(); // a GPU machine: auto takes the GPU
    else expect(auto?.name).toBe("webgpu");
    auto?.dispose();
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
