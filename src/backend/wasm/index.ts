// The WASM backend: kernels from wasm/build/kernels.wasm (AssemblyScript, SIMD) running on one
// shared linear memory; a DeviceBuffer is a block of that memory, so a kernel call copies nothing.
// run() resolves buffers to pointers and calls the export `<kernel>_f32(inputs…, outputs…, params…)`
// (matmul goes through ./matmul.ts; big attention, cross-entropy, elementwise, row and copy calls are
// split over the worker pool by ./parallel.ts); runGroup() runs independent launches one per thread.
// Kernels run synchronously, also when split: flush() has nothing to wait for, and downloadSync() is
// supported. Not a shape checker (src/ops is).

import { checkOwner, type Backend, type BackendOptions, type DeviceBuffer, type KernelLaunch, type MemoryStats } from "../backend.ts";
import { KERNELS, paramList, type KernelName, type KernelParams } from "../kernels.ts";
import { findBlas, blasSetting } from "./blas.ts";
import { runAdamwGroup } from "./multi_tensor.ts";
import { MATMUL_SCRATCH_ARG, matmulCall, matmulChunks, matmulEngine, runMatmul } from "./matmul.ts";
import { createWasmRuntime, type KernelExport, type WasmRuntime } from "./module.ts";
import { attentionScratchBytes, runAttention, runCrossEntropy, runSplit, splittable } from "./parallel.ts";
import { MAX_CHUNKS, threadPool, type PoolChunk } from "./threads.ts";

/** A block of the backend's linear memory. */
export class WasmBuffer implements DeviceBuffer {
  /** byte offset into the linear memory; 0 once freed */
  rawPointer: number;
  constructor(
    readonly backend: WasmBackend,
    readonly bytes: number,
    rawPointer: number,
  ) {
    this.rawPointer = rawPointer;
  }
}


export class WasmBackend implements Backend {
  readonly name = "wasm" as const;
  readonly device: string;
  readonly #rt: WasmRuntime;
  readonly #exports = new Map<string, KernelExport>();
  #scratchPtr = 0;
  #scratchBytes = 0;
  #disposed = false;

  constructor(rt: WasmRuntime) {
    this.#rt = rt;
    this.device = `wasm simd128${rt.blas ? ` + ${rt.blas.name}` : ""} (${rt.threads} thread${rt.threads === 1 ? "" : "s"})`;
  }

  /** The runtime under this backend (memory, exports, views): for kernel authors and benchmarks. */
  get unsafeRuntime(): WasmRuntime {
    return this.#rt;
  }

  alloc(bytes: number): WasmBuffer {
    this.#live();
    return new WasmBuffer(this, bytes, this.#rt.alloc(bytes));
  }

  free(buffer: DeviceBuffer): void {
    this.#live();
    checkOwner(this, buffer, "free");
    const b = buffer as WasmBuffer;
    if (b.rawPointer === 0) throw new Error("[free] buffer was already freed");
    this.#rt.free(b.rawPointer);
    b.rawPointer = 0;
  }

  upload(buffer: DeviceBuffer, data: ArrayBufferView, byteOffset = 0): void {
    const ptr = this.#ptr(buffer, "upload");
    if (byteOffset < 0 || byteOffset + data.byteLength > buffer.bytes) {
      throw new Error(`[upload] ${data.byteLength} bytes at offset ${byteOffset} do not fit a buffer of ${buffer.bytes} bytes`);
    }
    const src = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.#rt.u8(ptr + byteOffset, data.byteLength).set(src);
  }

  /**
   * A writable view of the buffer's bytes where they live, in the linear memory: loaders read file
   * bytes straight into it (src/models/pretrained.ts) instead of staging them for upload(). The
   * memory is shared, so growing it does not detach the view; freeing the buffer ends its meaning.
   */
  hostView(buffer: DeviceBuffer): Uint8Array {
    return this.#rt.u8(this.#ptr(buffer, "hostView"), buffer.bytes);
  }

  async download(buffer: DeviceBuffer, bytes?: number): Promise<ArrayBuffer> {
    return this.downloadSync(buffer, bytes);
  }

  downloadSync(buffer: DeviceBuffer, bytes = buffer.bytes): ArrayBuffer {
    const ptr = this.#ptr(buffer, "download");
    if (bytes < 0 || bytes > buffer.bytes) throw new Error(`[download] ${bytes} bytes requested from a buffer of ${buffer.bytes}`);
    const out = new Uint8Array(bytes);
    out.set(this.#rt.u8(ptr, bytes));
    return out.buffer;
  }

  run<K extends KernelName>(
    kernel: K,
    inputs: readonly (DeviceBuffer | null)[],
    outputs: readonly DeviceBuffer[],
    params: KernelParams<K>,
  ): void {
    const args = this.#pointers(kernel, inputs, outputs);
    if (kernel === "matmul") {
      runMatmul(this.#rt, args[0], args[1], args[2], args[3], params as KernelParams<"matmul">);
      return;
    }
    if (kernel === "cross_entropy" || kernel === "cross_entropy_backward") {
      if (runCrossEntropy(this.#rt, kernel, args, params as KernelParams<"cross_entropy">)) return;
    } else if (kernel === "attention" || kernel === "attention_backward") {
      if (runAttention(this.#rt, kernel, args, params as KernelParams<"attention">)) return;
    } else if (splittable(kernel) && runSplit(this.#rt, kernel, args, params)) {
      return;
    }
    for (const v of paramList(kernel, params)) args.push(v);
    if (kernel === "attention" || kernel === "attention_backward") {
      const { T, S, D } = params as KernelParams<"attention">;
      const bytes = attentionScratchBytes(kernel, T, S, D);
      args.push(this.#scratch(bytes), bytes); // trailing scratch and its size (wasm/assembly/attention.ts)
    }
    this.#export(kernel)(...args);
  }

  /**
   * Independent launches as one job of the worker pool. Big matmuls get the threads between them
   * (two on two threads: one whole matmul per thread, so no row split, B packed once, one wake-up;
   * two on four threads: each split in two); the other launches are one chunk each; longest first.
   * Falls back to run() in turn for one thread, fewer than two big matmuls, or attention (which
   * brings scratch of its own). A group of adamw launches (one optimizer step) is one job of
   * ./multi_tensor.ts, on any number of threads.
   */
  runGroup(launches: readonly KernelLaunch[]): void {
    const inTurn = () => {
      for (const l of launches) this.run(l.kernel, l.inputs, l.outputs, l.params as never); // (a union of launches: params match kernel)
    };
    if (launches.length > 1 && launches.every((l) => l.kernel === "adamw")) {
      const items = launches.map((l) => ({ ptrs: this.#pointers(l.kernel, l.inputs, l.outputs), params: l.params as KernelParams<"adamw"> }));
      if (runAdamwGroup(this.#rt, items)) return;
    }
    if (this.#rt.threads <= 1 || launches.length > MAX_CHUNKS || launches.some((l) => l.kernel === "attention" || l.kernel === "attention_backward")) {
      return inTurn();
    }
    const items = launches.map((l) => {
      const ptrs = this.#pointers(l.kernel, l.inputs, l.outputs);
      const m = l.kernel === "matmul" ? matmulCall(ptrs[0], ptrs[1], ptrs[2], ptrs[3], l.params as KernelParams<"matmul">) : null;
      const engine = m ? matmulEngine(this.#rt, m) : null;
      return { l, ptrs, m, engine, big: m !== null && engine !== null && m.flops >= engine.minParallelFlops };
    });
    const bigCount = items.filter((i) => i.big).length;
    if (bigCount < 2) return inTurn();
    const pool = threadPool(this.#rt);
    pool.startWorkers();
    const perMatmul = Math.max(1, Math.floor(pool.participants / bigCount));
    const calls: { chunk: PoolChunk; cost: number }[] = [];
    for (const { l, ptrs, m, engine, big } of items) {
      if (m && engine) {
        const parts = matmulChunks(m, big ? perMatmul : 1, 1);
        for (const args of parts) calls.push({ chunk: { fn: engine.fn, args, scratchArg: MATMUL_SCRATCH_ARG }, cost: m.flops / parts.length });
      } else {
        calls.push({ chunk: { fn: `${l.kernel}_f32`, args: [...ptrs, ...paramList(l.kernel, l.params as never)] }, cost: 0 });
      }
    }
    if (calls.length > MAX_CHUNKS) return inTurn();
    calls.sort((x, y) => y.cost - x.cost);
    pool.runMixed(calls.map((c) => c.chunk));
  }

  #pointers(kernel: KernelName, inputs: readonly (DeviceBuffer | null)[], outputs: readonly DeviceBuffer[]): number[] {
    const spec = KERNELS[kernel];
    if (!spec) throw new Error(`[${kernel}] unknown kernel`);
    if (inputs.length !== spec.inputs.length || outputs.length !== spec.outputs.length) {
      throw new Error(
        `[${kernel}] expects ${spec.inputs.length} inputs and ${spec.outputs.length} outputs, ` +
          `got ${inputs.length} and ${outputs.length}`,
      );
    }
    const args: number[] = [];
    for (let i = 0; i < inputs.length; i++) {
      const b = inputs[i];
      if (b === null || b === undefined) {
        if (!spec.inputs[i].endsWith("?")) throw new Error(`[${kernel}] input ${spec.inputs[i]} is required, got null`);
        args.push(0);
      } else {
        args.push(this.#ptr(b, kernel));
      }
    }
    for (const b of outputs) args.push(this.#ptr(b, kernel));
    return args;
  }

  async flush(): Promise<void> {
    this.#live();
  }

  stats(): MemoryStats {
    return this.#rt.stats();
  }

  resetPeak(): void {
    this.#rt.allocator.resetPeak();
  }

  emptyCache(): void {
    this.#rt.allocator.emptyCache();
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#rt.dispose();
  }

  #live(): void {
    if (this.#disposed) throw new Error("[wasm] this backend was disposed");
  }

  #ptr(buffer: DeviceBuffer, kernel: string): number {
    this.#live();
    checkOwner(this, buffer, kernel);
    const ptr = (buffer as WasmBuffer).rawPointer;
    if (ptr === 0) throw new Error(`[${kernel}] a freed buffer was passed`);
    return ptr;
  }

  #export(kernel: KernelName): KernelExport {
    let fn = this.#exports.get(kernel);
    if (!fn) {
      fn = this.#rt.exports[`${kernel}_f32`] as KernelExport | undefined;
      if (typeof fn !== "function") {
        throw new Error(`[${kernel}] the wasm module has no export ${kernel}_f32: rebuild it with \`npm run build:wasm\``);
      }
      this.#exports.set(kernel, fn);
    }
    return fn;
  }

  /** A backend-owned scratch block of at least `bytes` bytes (not counted in stats()). */
  #scratch(bytes: number): number {
    if (bytes > this.#scratchBytes) {
      if (this.#scratchPtr !== 0) this.#rt.allocator.free(this.#scratchPtr);
      this.#scratchBytes = Math.max(bytes, 4096);
      this.#scratchPtr = this.#rt.allocator.alloc(this.#scratchBytes, false);
    }
    return this.#scratchPtr;
  }
}

/** Threads for big kernels: options.threads, or a number in options.device, else all cores up to 4. */
function threadCount(options: BackendOptions): number {
  const fromDevice = options.device !== undefined && /^\d+$/.test(options.device) ? Number(options.device) : undefined;
  const cores = typeof navigator !== "undefined" && navigator.hardwareConcurrency ? navigator.hardwareConcurrency : 1;
  return Math.max(1, Math.floor(options.threads ?? fromDevice ?? Math.min(cores, 4)));
}

export async function createWasmBackend(options: BackendOptions & { auto?: boolean } = {}): Promise<Backend> {
  const blas = await findBlas(blasSetting(options.blas));
  const rt = await createWasmRuntime({ threads: threadCount(options), blas });
  return new WasmBackend(rt);
}
