// Getting a WebGPU device, and the adapter rules. On Bun: the bun:ffi driver over a native
// webgpu.h library (ffi/library.ts says which); elsewhere: navigator.gpu. A "null" (Dawn) backend
// is never an adapter; a CPU adapter (lavapipe) is taken only when asked for by name, never by
// createBackend("auto"). Also chooses the kernel variants for the adapter (chooseTuning).
import type { GpuDriver, AcquireOptions, AdapterInfo } from "./driver.ts";
import type { Tuning } from "./launch.ts";
import { debugLevel } from "../../util/env.ts";

const debug = () => debugLevel() >= 1;

/** A driver for the best adapter this runtime offers under `options`, or null. */
export async function acquireDriver(options: AcquireOptions): Promise<GpuDriver | null> {
  if (typeof (globalThis as { Bun?: unknown }).Bun !== "undefined") {
    const { findWebGPULibrary } = await import("./ffi/library.ts");
    const tried: string[] = [];
    const library = findWebGPULibrary(tried);
    if (library) {
      const { createFfiDriver } = await import("./ffi/ffi_driver.ts");
      return createFfiDriver(library, options);
    }
    if (debug()) console.error(`[webgpu] no native webgpu.h library: ${tried.join("; ")}`);
  }
  const { createNavigatorDriver } = await import("./navigator_driver.ts");
  return createNavigatorDriver(options);
}

/**
 * Kernel variants per adapter. On lavapipe (a CPU), register blocking (4×4 outputs per thread, no
 * shared memory) measured fastest and shared-memory tiles slowest, because workgroupBarrier is a
 * coroutine switch there; on real GPUs the opposite holds.
 */
export function chooseTuning(info: AdapterInfo): Tuning {
  return { matmul: info.kind === "cpu" ? "matmul" : "matmul_tiled" };
}
