// THE backend protocol. A Backend owns device memory and runs the kernels of the kernel list
// (./kernels.ts); tensors, autograd and everything above talk to hardware only through it.
//
// Contract:
// - alloc(bytes) returns a DeviceBuffer of at least `bytes` bytes (contents undefined); free()
//   gives it back (to a pool: emptyCache() releases pooled memory to the system). A buffer is
//   used by one backend only; passing another backend's buffer is an error.
// - upload() copies host bytes into a buffer; download() resolves with a copy of its bytes once
//   all work queued before it has finished. downloadSync() exists only where reading is free
//   (wasm); it is undefined on backends that must wait for a device. Likewise hostView(), a
//   writable view of a buffer's bytes where they live (wasm: its block of the linear memory),
//   for loaders that read file bytes straight into a buffer.
// - run(kernel, inputs, outputs, params) queues one kernel launch. Buffers follow the kernel
//   list's order; optional inputs are passed as null. Backends trust shapes: the front end
//   (src/ops) has already checked them. Errors name the kernel.
// - runGroup(launches), optional, runs launches that are independent of each other (none reads or
//   writes a buffer another one writes) in any order or at the same time (wasm: one thread each,
//   instead of splitting each launch over the threads); callers without it run() them in turn.
// - flush() resolves when everything queued has finished. stats() reports memory.
// This is a private API for kernel authors; users see Tensor and createComputeBackend().

import type { KernelName, KernelParams } from "./kernels.ts";

export type BackendName = "wasm" | "webgpu";

/** A block of device memory. Backends extend it with their own handle (a pointer, a GPUBuffer). */
export interface DeviceBuffer {
  readonly backend: Backend;
  readonly bytes: number;
}

export interface MemoryStats {
  /** bytes in live buffers */
  allocatedBytes: number;
  /** the high-water mark of allocatedBytes since creation (or resetPeak) */
  peakBytes: number;
  /** live buffers */
  buffers: number;
  /** bytes held in the free pool, reusable without a new allocation */
  pooledBytes: number;
}

/** One kernel launch, as run() takes it (runGroup takes several). */
export type KernelLaunch = {
  [K in KernelName]: {
    kernel: K;
    inputs: readonly (DeviceBuffer | null)[];
    outputs: readonly DeviceBuffer[];
    params: KernelParams<K>;
  };
}[KernelName];

export interface Backend {
  readonly name: BackendName;
  /** what it runs on, in words ("wasm simd, 2 threads", "NVIDIA H100 (vulkan)") */
  readonly device: string;
  /** whether matrix products under withAutocast(true) multiply in f16 (WebGPU with shader-f16) */
  readonly autocastF16?: boolean;
  alloc(bytes: number): DeviceBuffer;
  free(buffer: DeviceBuffer): void;
  upload(buffer: DeviceBuffer, data: ArrayBufferView, byteOffset?: number): void;
  download(buffer: DeviceBuffer, bytes?: number): Promise<ArrayBuffer>;
  downloadSync?(buffer: DeviceBuffer, bytes?: number): ArrayBuffer;
  /** the buffer's bytes in place, where the host can address them (wasm); undefined elsewhere */
  hostView?(buffer: DeviceBuffer): Uint8Array;
  run<K extends KernelName>(
    kernel: K,
    inputs: readonly (DeviceBuffer | null)[],
    outputs: readonly DeviceBuffer[],
    params: KernelParams<K>,
  ): void;
  /** independent launches, possibly at the same time (see the contract above); undefined where not supported */
  runGroup?(launches: readonly KernelLaunch[]): void;
  flush(): Promise<void>;
  stats(): MemoryStats;
  resetPeak(): void;
  emptyCache(): void;
  /** frees everything and ends worker threads / device handles; the backend is unusable after */
  dispose(): void;
}

export interface BackendOptions {
  /** a device choice where a backend has several ("cpu" to accept a software WebGPU adapter; thread count for wasm) */
  device?: string;
  /** wasm: worker threads for big kernels (default: all cores, at most 4) */
  threads?: number;
  /** wasm: native BLAS for matrix products: "auto", "off", or a library path (default: KILN_BLAS) */
  blas?: string;
}

/** Throws unless `buffer` belongs to `backend` (every backend calls this on the buffers it is handed). */
export function checkOwner(backend: Backend, buffer: DeviceBuffer, kernel: string): void {
  if (buffer.backend !== backend) {
    throw new Error(
      `[${kernel}] a buffer of backend "${buffer.backend.name}" was passed to backend "${backend.name}": ` +
        `move tensors with .to("${backend.name}") first`,
    );
  }
}
