// Finds the native webgpu.h library for the bun:ffi driver. First hit wins:
//   1. KILN_WEBGPU_LIBRARY (a path),
//   2. wgpu-native (libwgpu_native.so / .dylib / wgpu_native.dll) on the system library path,
//   3. the Dawn build the npm package bun-webgpu-<platform>-<arch> ships (libwebgpu_wrapper.*,
//      which exports the standard wgpu* symbols; kiln uses only the library, not that package's JS).
// Not the binding itself (ffi_driver.ts); this file only names candidates and their flavor.
import { dlopen, suffix } from "bun:ffi";
import { dirname, join } from "node:path";
import { existsSync } from "node:fs";
import { WGPU_NATIVE_SYMBOLS } from "./symbols.ts";
import { env } from "../../../util/env.ts";

/** Which header generation the library follows: layouts and the wait primitive differ. */
export type LibraryFlavor = "dawn" | "wgpu-native";

export interface NativeLibrary {
  path: string;
  flavor: LibraryFlavor;
  /** where it came from, in words, for backend.device */
  source: string;
}

/** The library to load, or null (with the reasons in `tried`) when none is found. */
export function findWebGPULibrary(tried: string[] = []): NativeLibrary | null {
  const library = env("KILN_WEBGPU_LIBRARY");
  if (library) {
    if (!existsSync(library)) {
      tried.push(`KILN_WEBGPU_LIBRARY=${library} does not exist`);
      return null;
    }
    return { path: library, flavor: flavorOf(library), source: "KILN_WEBGPU_LIBRARY" };
  }
  const wgpuNative = process.platform === "win32" ? "wgpu_native.dll" : `libwgpu_native.${suffix}`;
  if (opens(wgpuNative)) return { path: wgpuNative, flavor: "wgpu-native", source: "wgpu-native" };
  tried.push(`${wgpuNative} is not on the library path`);
  const pkg = `bun-webgpu-${process.platform}-${process.arch}`;
  try {
    const dir = dirname(require.resolve(`${pkg}/package.json`));
    const path = join(dir, process.platform === "win32" ? "webgpu_wrapper.dll" : `libwebgpu_wrapper.${suffix}`);
    if (existsSync(path)) return { path, flavor: "dawn", source: `Dawn from ${pkg}` };
    tried.push(`${path} is missing`);
  } catch {
    tried.push(`npm package ${pkg} is not installed`);
  }
  return null;
}

/**
 * Whether Dawn can find a Vulkan loader (libvulkan.so.1), on Linux where Vulkan is its only
 * backend. Without one Dawn prints a warning and finds no adapter, so "auto" skips it quietly.
 */
export function hasVulkanLoader(): boolean {
  return process.platform !== "linux" || opens("libvulkan.so.1");
}

function opens(name: string): boolean {
  try {
    dlopen(name, {}).close();
    return true;
  } catch {
    return false;
  }
}

/** wgpu-native exports wgpuDevicePoll; Dawn does not. */
function flavorOf(path: string): LibraryFlavor {
  try {
    dlopen(path, WGPU_NATIVE_SYMBOLS).close();
    return "wgpu-native";
  } catch {
    return "dawn";
  }
}
