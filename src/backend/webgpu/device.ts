// Getting a WebGPU device, and the adapter rules. On Bun: the bun:ffi driver over a native
// webgpu.h library (ffi/library.ts says which); elsewhere: navigator.gpu. A "null" (Dawn) backend
// is never an adapter; a CPU adapter (lavapipe) is taken only when asked for by name, never by
// createComputeBackend("auto"). Also which optional features to request (KILN_WEBGPU_FEATURES) and the
// kernel variants for the adapter (chooseTuning).
import type { AcquireOptions, AdapterInfo, GpuDriver, GpuFeatures } from "./driver.ts";
import type { Tuning } from "./launch.ts";
import { debugLevel, env } from "../../util/env.ts";

const debug = () => debugLevel() >= 1;

/** A driver for the best adapter this runtime offers under `options`, or null. */
export async function acquireDriver(options: AcquireOptions): Promise<GpuDriver | null> {
  if (typeof (globalThis as { Bun?: unknown }).Bun !== "undefined") {
    const { findWebGPULibrary, hasVulkanLoader } = await import("./ffi/library.ts");
    const tried: string[] = [];
    const library = findWebGPULibrary(tried);
    if (library?.flavor === "dawn" && !options.allowCpu && !hasVulkanLoader()) {
      // "auto" on a machine without Vulkan: no GPU to find, and Dawn would only print a warning
      if (debug()) console.error("[webgpu] Dawn needs a Vulkan loader (libvulkan.so.1) and none is installed");
      return null;
    }
    if (library) {
      const { createFfiDriver } = await import("./ffi/ffi_driver.ts");
      return createFfiDriver(library, options);
    }
    if (debug()) console.error(`[webgpu] no native webgpu.h library: ${tried.join("; ")}`);
  }
  const { createNavigatorDriver } = await import("./navigator_driver.ts");
  return createNavigatorDriver(options);
}

const FEATURE_NAMES: Record<string, keyof GpuFeatures> = { "shader-f16": "shaderF16", subgroups: "subgroups" };

/**
 * The optional features kiln may request: KILN_WEBGPU_FEATURES ("all", "none" or a comma list of
 * WebGPU feature names). A feature not requested is absent from the device, so every kernel
 * that could use it runs its fallback; tests use "none" to run the whole suite on the fallbacks.
 */
export function requestedFeatures(value = env("KILN_WEBGPU_FEATURES")): GpuFeatures {
  const v = value.trim().toLowerCase();
  if (v === "" || v === "all") return { shaderF16: true, subgroups: true };
  const out: GpuFeatures = { shaderF16: false, subgroups: false };
  if (v === "none") return out;
  for (const name of v.split(",").map((s) => s.trim()).filter(Boolean)) {
    const key = FEATURE_NAMES[name];
    if (!key) {
      const names = Object.keys(FEATURE_NAMES).join(", ");
      throw new Error(`KILN_WEBGPU_FEATURES: unknown feature "${name}" (expected all, none, or a comma list of ${names})`);
    }
    out[key] = true;
  }
  return out;
}

/** Choices that are not the adapter's to make. */
export interface TuningOptions {
  /** matmul multiplies in f16 (inference only); default KILN_WEBGPU_F16 = 1 */
  f16?: boolean;
}

/**
 * Kernel variants per adapter (measured on lavapipe; GPU choices follow the usual practice):
 * - matmul: on a CPU adapter (lavapipe) register blocking (no shared memory; A loads the same
 *   for the whole workgroup, which llvmpipe makes one load) is fastest and shared-memory tiles
 *   slowest, because workgroupBarrier is a coroutine switch there; on GPUs the opposite holds.
 * - gemv: M = 1 products on the GEMV kernels everywhere (the 4×4 kernel wastes 3 of 4 rows there);
 *   on GPUs each workgroup splits K 4 ways (more threads for short, wide products).
 * - subgroups: wherever the device has them (fewer barriers in every row reduction).
 * - rowThreads: 64 per row on GPUs; on a CPU adapter one SIMD-width group per row (8), which
 *   with subgroups needs no barrier at all.
 * - attentionRows: up to how many query rows attention takes a workgroup per row (decoding) rather
 *   than a thread per row, where a thread per row would leave most of a GPU idle (B·H threads
 *   when decoding). Not on a CPU adapter: measured no faster there (the loads of either are gathers).
 * - f16: only on request.
 */
export function chooseTuning(info: AdapterInfo, features: GpuFeatures, options: TuningOptions = {}): Tuning {
  const cpu = info.kind === "cpu";
  const f16 = options.f16 ?? env("KILN_WEBGPU_F16") === "1";
  return {
    matmul: cpu ? "matmul" : "matmul_tiled",
    gemv: cpu ? 1 : 4,
    subgroups: features.subgroups,
    rowThreads: cpu ? 8 : 64,
    attentionRows: cpu ? 0 : 4096,
    f16: f16 && features.shaderF16,
  };
}
