// The WebGPU backend (issue: "The WebGPU backend"). Not built yet: the factory reports that no
// adapter is available, so createBackend("auto") falls back to wasm and createBackend("webgpu")
// says clearly that WebGPU is unavailable.
import type { Backend, BackendOptions } from "../backend.ts";

export async function createWebGPUBackend(_options: BackendOptions & { auto?: boolean }): Promise<Backend | null> {
  return null;
}
