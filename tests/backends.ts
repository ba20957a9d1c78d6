// The backends the conformance suite runs on: "wasm" always, "webgpu" when this machine has an
// adapter (a software one is accepted here). KILN_TEST_WEBGPU=1 makes WebGPU mandatory: failing
// to create it throws, so CI fails instead of silently skipping. getBackend() caches instances.
import type { Backend } from "../src/backend/backend.ts";
import { createComputeBackend } from "../src/backend/registry.ts";

const cache = new Map<string, Promise<Backend>>();

/** The wasm backend with its matrix products on the wasm kernel even where a native BLAS is present. */
export const WASM_NO_BLAS = "wasm (no BLAS)";

/** One shared backend instance per name (tests must free what they allocate). */
export function getBackend(name: string): Promise<Backend> {
  let b = cache.get(name);
  if (!b) {
    b = name === WASM_NO_BLAS
      ? createComputeBackend("wasm", { blas: "off" })
      : createComputeBackend(name, name === "webgpu" ? { device: "cpu" } : {});
    cache.set(name, b);
  }
  return b;
}

async function webgpuAvailable(): Promise<boolean> {
  if (process.env.KILN_TEST_WEBGPU === "1") {
    await getBackend("webgpu"); // throws: the suite must not skip WebGPU when it was asked for
    return true;
  }
  try {
    await getBackend("webgpu");
    return true;
  } catch {
    cache.delete("webgpu");
    return false;
  }
}

export const backendNames: string[] = ["wasm", ...((await webgpuAvailable()) ? ["webgpu"] : [])];
