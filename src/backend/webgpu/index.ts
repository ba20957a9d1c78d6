// The WebGPU backend's entry point for the registry (../registry.ts): createWebGPUBackend.
// By name it accepts any real adapter, software (lavapipe) included; with { auto: true } only a
// GPU (createComputeBackend("auto") must not pick a CPU adapter over wasm). Null when there is none.
// WebGPU-only options: which optional features to use (default KILN_WEBGPU_FEATURES) and f16.
import type { Backend, BackendOptions } from "../backend.ts";
import { acquireDriver, chooseTuning, requestedFeatures } from "./device.ts";
import type { GpuFeatures } from "./driver.ts";
import { WebGPUBackend } from "./webgpu_backend.ts";
import { debugLevel } from "../../util/env.ts";

export { WebGPUBackend } from "./webgpu_backend.ts";
export type { Tuning } from "./launch.ts";

export interface WebGPUOptions extends BackendOptions {
  /** only a GPU adapter (createComputeBackend("auto")) */
  auto?: boolean;
  /** optional features to use where the adapter has them (default: KILN_WEBGPU_FEATURES, "all");
   *  { subgroups: false } runs every row reduction on its shared-memory fallback */
  features?: Partial<GpuFeatures>;
  /** matmul multiplies in f16 where the adapter has shader-f16 (inference only; default KILN_WEBGPU_F16) */
  f16?: boolean;
}

export async function createWebGPUBackend(options: WebGPUOptions): Promise<Backend | null> {
  const allowCpu = !options.auto || options.device === "cpu";
  const features = { ...requestedFeatures(), ...options.features };
  let driver;
  try {
    driver = await acquireDriver({ allowCpu, features });
  } catch (e) {
    if (options.auto) {
      if (debugLevel() >= 1) console.error(`[webgpu] unavailable: ${(e as Error).message}`);
      return null;
    }
    throw e;
  }
  return driver ? new WebGPUBackend(driver, chooseTuning(driver.info, driver.features, { f16: options.f16 })) : null;
}
