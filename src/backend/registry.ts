// Choosing a backend: a registry of named factories, and createComputeBackend("wasm" | "webgpu" | "auto").
// Backends are imported lazily, so a program that never asks for WebGPU never loads its driver.
// "auto" takes WebGPU when a real GPU adapter exists (never a software one), else WASM, and says
// which it took (backend.name, backend.device).

import type { Backend, BackendOptions } from "./backend.ts";
import { seed as seedRng } from "../tensor/random.ts";
import { debugLevel } from "../util/env.ts";

/** Makes a backend, or returns null when this machine cannot run it (no adapter, say). */
export type BackendFactory = (options: BackendOptions & { auto?: boolean }) => Promise<Backend | null>;

export class ComputeBackendRegistry {
  readonly #factories = new Map<string, BackendFactory>();

  register(name: string, factory: BackendFactory): void {
    this.#factories.set(name, factory);
  }

  list(): string[] {
    return [...this.#factories.keys()];
  }

  /** Creates the named backend; throws a clear error for an unknown name or an unavailable backend. */
  async create(name: string, options: BackendOptions = {}): Promise<Backend> {
    const factory = this.#factories.get(name);
    if (!factory) {
      throw new Error(`unknown backend "${name}": expected one of ${["auto", ...this.list()].map((n) => `"${n}"`).join(", ")}`);
    }
    const backend = await factory(options);
    if (!backend) throw new Error(`backend "${name}" is not available on this machine (${unavailableHint(name)})`);
    return backend;
  }

  /** The first backend in `order` that this machine can run. */
  async auto(order: readonly string[], options: BackendOptions = {}): Promise<Backend> {
    for (const name of order) {
      const factory = this.#factories.get(name);
      const backend = factory ? await factory({ ...options, auto: true }) : null;
      if (backend) return backend;
    }
    throw new Error(`no backend is available (tried ${order.join(", ")})`);
  }
}

function unavailableHint(name: string): string {
  return name === "webgpu"
    ? "no WebGPU adapter was found; see the README's WebGPU section for drivers"
    : "its module failed to load";
}

/** The process-wide registry with kiln's two backends. */
export const backends = new ComputeBackendRegistry();
backends.register("wasm", async (options) => (await import("./wasm/index.ts")).createWasmBackend(options));
backends.register("webgpu", webgpuFactory(() => import("./webgpu/index.ts")));

/**
 * The WebGPU factory, its module imported on first use. A module that fails to load (a broken
 * install, a syntax error) is an error naming the cause when WebGPU was asked for by name; for
 * "auto" it only means WebGPU is not available (KILN_DEBUG=1 prints why).
 */
export function webgpuFactory(load: () => Promise<typeof import("./webgpu/index.ts")>): BackendFactory {
  return async (options) => {
    let mod;
    try {
      mod = await load();
    } catch (e) {
      if (options.auto) {
        if (debugLevel() >= 1) console.error(`[webgpu] unavailable: its module failed to load: ${(e as Error).message}`);
        return null;
      }
      throw new Error(`backend "webgpu" failed to load: ${(e as Error).message}`, { cause: e });
    }
    return mod.createWebGPUBackend(options);
  };
}

export type BackendChoice = "wasm" | "webgpu" | "auto";

/**
 * createComputeBackend("auto") prefers a real GPU through WebGPU, then WASM. `seed` seeds kiln's random
 * number generator (initialisation, dropout, sampling), as kiln.seed(n) does.
 */
export async function createComputeBackend(name: BackendChoice | string = "auto", options: BackendOptions & { seed?: number } = {}): Promise<Backend> {
  const { seed, ...rest } = options;
  const backend = await (name === "auto" ? backends.auto(["webgpu", "wasm"], rest) : backends.create(name, rest));
  if (seed !== undefined) seedRng(seed);
  return backend;
}
