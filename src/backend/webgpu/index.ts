// The WebGPU backend's entry point for the registry (../registry.ts): createWebGPUBackend.
// By name it accepts any real adapter, software (lavapipe) included; with { auto: true } only a
// GPU (createBackend("auto") must not pick a CPU adapter over wasm). Null when there is none.
import type { Backend, BackendOptions } from "../backend.ts";
import { acquireDriver, chooseTuning } from "./device.ts";
import { WebGPUBackend } from "./webgpu_backend.ts";
import { debugLevel } from "../../util/env.ts";

export { WebGPUBackend } from "./webgpu_backend.ts";

export async function createWebGPUBackend(options: BackendOptions & { auto?: boolean }): Promise<Backend | null> {
  const allowCpu = !options.auto || options.device === "cpu";
  let driver;
  try {
    driver = await acquireDriver({ allowCpu });
  } catch (e) {
    if (options.auto) {
      if (debugLevel() >= 1) console.error(`[webgpu] unavailable: ${(e as Error).message}`);
      return null;
    }
    throw e;
  }
  return driver ? new WebGPUBackend(driver, chooseTuning(driver.info)) : null;
}
