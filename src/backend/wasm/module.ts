// Loads the AssemblyScript kernels (wasm/build/kernels.wasm) into ONE shared WebAssembly.Memory
// and exposes them as a WasmRuntime: the typed exports, zero-copy views on the memory, and the
// allocator (./allocator.ts). Not a Backend: ./index.ts builds the Backend on top of this.
// The module is compiled once per process; each runtime owns its memory (JSC keeps at most 8
// fast, guard-paged wasm memories per process).

import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { WasmAllocator } from "./allocator.ts";
import type { MemoryStats } from "../backend.ts";
import type { BlasLibrary } from "./blas.ts";
import { KERNEL_NAMES, KERNELS } from "../kernels.ts";

/** A kernel export: pointers (byte offsets) and params, all plain numbers. */
export type KernelExport = (...args: number[]) => void;

/** The kernel exports: `<kernel>_f32` for every kernel of the kernel list (and variants). */
export interface KernelExports {
  readonly memory?: WebAssembly.Memory;
  abi_version(): number;
  /** bytes of scratch one matmul_f32 call needs */
  matmul_scratch_bytes(): number;
  readonly [name: string]: KernelExport | WebAssembly.Memory | (() => number) | undefined;
}

export interface WasmRuntime {
  readonly memory: WebAssembly.Memory;
  readonly module: WebAssembly.Module;
  readonly exports: KernelExports;
  /** worker threads the runtime may use for big kernels (1 = main thread only) */
  readonly threads: number;
  /** the native BLAS that runs matrix products (./blas_matmul.ts), or null: the wasm kernel does */
  readonly blas: BlasLibrary | null;
  /** a Float32Array view of n floats at byte offset ptr (valid until the memory grows) */
  f32(ptr: number, n: number): Float32Array;
  /** an Int32Array view of n ints at byte offset ptr */
  i32(ptr: number, n: number): Int32Array;
  /** a Uint8Array view of n bytes at byte offset ptr */
  u8(ptr: number, n: number): Uint8Array;
  /** 64-byte-aligned block of at least `bytes` bytes; the memory grows when needed */
  alloc(bytes: number): number;
  free(ptr: number): void;
  stats(): MemoryStats;
  readonly allocator: WasmAllocator;
  /** runs fn when the runtime is disposed (worker pools hang their shutdown here) */
  onDispose(fn: () => void): void;
  dispose(): void;
}

export interface RuntimeOptions {
  threads?: number;
  /** a loaded native BLAS for matrix products (./blas.ts findBlas); none by default */
  blas?: BlasLibrary | null;
  /** initial memory in 64 KiB pages (at least what the module declares: 256) */
  initialPages?: number;
}

const WASM_URL = new URL("../../../wasm/build/kernels.wasm", import.meta.url);
const MAX_PAGES = 65536; // 4 GiB
const MODULE_MIN_PAGES = 256;
/**
 * Bytes below this offset are never handed out: pointer 0 is "null", and the module's data segments
 * (AssemblyScript's f64 math tables for log/pow/cos/sin, ~11 KiB from offset 1024) live there. Each
 * instantiation (one per Worker too) rewrites them with identical bytes. tests/backend/protocol.test.ts
 * checks that they end below HEAP_BASE.
 */
export const HEAP_BASE = 65536;

let compiled: Promise<WebAssembly.Module> | undefined;

/** Exports the host calls besides the kernels' own: a build without one is stale. */
export const HOST_EXPORTS = ["matmul_scratch_bytes", "adamw_list_f32"];

/** Compiles wasm/build/kernels.wasm once per process. */
export function loadKernelModule(): Promise<WebAssembly.Module> {
  compiled ??= (async () => {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(fileURLToPath(WASM_URL));
    } catch (e) {
      throw new Error(
        `kiln: the WASM kernels are missing (${fileURLToPath(WASM_URL)}): run \`npm run build:wasm\` ` +
          `(or \`bun run build:wasm\`) to build them. (${(e as Error).message})`,
      );
    }
    const module = await WebAssembly.compile(bytes);
    // a build older than the sources (a kernel or export added since) is a clear error, not a
    // "not a function" deep inside a kernel call
    const names = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
    const missing = [...KERNEL_NAMES.map((k) => `${k}_f32`), ...HOST_EXPORTS].filter((n) => !names.has(n));
    if (missing.length) {
      throw new Error(`kiln: ${fileURLToPath(WASM_URL)} is older than the kernel sources (no export ${missing.join(", ")}): run \`npm run build:wasm\``);
    }
    return module;
  })();
  compiled.catch(() => (compiled = undefined));
  return compiled;
}

/**
 * Exports whose parameter list changed since an earlier build, with their parameter counts now:
 * a stale build would take the new trailing arguments as other ones (a wasm function's `length`
 * is its parameter count).
 */
const ARITY: Record<string, number> = {
  attention_f32: 3 + 2 + KERNELS.attention.params.length + 2, // q k v, out lse, params, scratch and its size
  attention_backward_f32: 6 + 3 + KERNELS.attention_backward.params.length + 2,
};

/** The first export whose parameter count is not ARITY's, as "name takes n arguments, not m"; null if none. */
export function checkArity(exports: WebAssembly.Exports): string | null {
  for (const [name, n] of Object.entries(ARITY)) {
    const got = (exports[name] as (...args: unknown[]) => unknown).length;
    if (got !== n) return `${name} takes ${got} arguments, not ${n}`;
  }
  return null;
}

/** Instantiates the kernels on a fresh shared memory with its allocator. */
export async function createWasmRuntime(options: RuntimeOptions = {}): Promise<WasmRuntime> {
  const module = await loadKernelModule();
  const initial = Math.max(MODULE_MIN_PAGES, options.initialPages ?? MODULE_MIN_PAGES);
  const memory = new WebAssembly.Memory({ initial, maximum: MAX_PAGES, shared: true });
  const instance = await WebAssembly.instantiate(module, kernelImports(module, memory));
  const stale = checkArity(instance.exports);
  if (stale) throw new Error(`kiln: ${fileURLToPath(WASM_URL)} is older than the kernel sources (${stale}): run \`npm run build:wasm\``);
  return new Runtime(memory, module, instance.exports as unknown as KernelExports, options.threads ?? 1, options.blas ?? null);
}

/** The imports the module asks for: env.memory, and env.abort if the build kept assertions. */
export function kernelImports(module: WebAssembly.Module, memory: WebAssembly.Memory): WebAssembly.Imports {
  const env: Record<string, WebAssembly.ImportValue> = { memory };
  for (const imp of WebAssembly.Module.imports(module)) {
    if (imp.module !== "env" || imp.name === "memory") continue;
    if (imp.name === "abort") {
      env.abort = (_msg: number, _file: number, line: number, col: number) => {
        throw new Error(`kiln wasm kernel aborted at ${line}:${col}`);
      };
    } else {
      throw new Error(`kiln: wasm/build/kernels.wasm imports ${imp.module}.${imp.name}, which the runtime does not provide`);
    }
  }
  return { env };
}

class Runtime implements WasmRuntime {
  readonly allocator: WasmAllocator;
  #buffer: ArrayBufferLike | undefined;
  #heapF32!: Float32Array;
  #heapI32!: Int32Array;
  #heapU8!: Uint8Array;
  #disposers: (() => void)[] = [];

  constructor(
    readonly memory: WebAssembly.Memory,
    readonly module: WebAssembly.Module,
    readonly exports: KernelExports,
    readonly threads: number,
    readonly blas: BlasLibrary | null,
  ) {
    this.allocator = new WasmAllocator(memory, HEAP_BASE);
  }

  /** whole-memory views, rebuilt when memory.grow replaced the buffer */
  #views(): void {
    const buffer = this.memory.buffer;
    if (buffer === this.#buffer) return;
    this.#buffer = buffer;
    this.#heapF32 = new Float32Array(buffer);
    this.#heapI32 = new Int32Array(buffer);
    this.#heapU8 = new Uint8Array(buffer);
  }

  f32(ptr: number, n: number): Float32Array {
    this.#views();
    return this.#heapF32.subarray(ptr >>> 2, (ptr >>> 2) + n);
  }

  i32(ptr: number, n: number): Int32Array {
    this.#views();
    return this.#heapI32.subarray(ptr >>> 2, (ptr >>> 2) + n);
  }

  u8(ptr: number, n: number): Uint8Array {
    this.#views();
    return this.#heapU8.subarray(ptr, ptr + n);
  }

  alloc(bytes: number): number {
    return this.allocator.alloc(bytes);
  }

  free(ptr: number): void {
    this.allocator.free(ptr);
  }

  stats(): MemoryStats {
    return this.allocator.stats();
  }

  onDispose(fn: () => void): void {
    this.#disposers.push(fn);
  }

  dispose(): void {
    const fns = this.#disposers.splice(0);
    for (const fn of fns.reverse()) fn();
  }
}
