// The small internal driver interface the WebGPU backend runs on: create buffers, write, read
// back, compile a WGSL pipeline with override constants, bind, dispatch, submit, wait. Two
// implementations: ffi/ffi_driver.ts (Bun, bun:ffi straight to a native webgpu.h library) and
// navigator_driver.ts (navigator.gpu: Deno, browsers). Not the Backend protocol (../backend.ts):
// no kernels, pools or caches here, and nothing above src/backend/webgpu sees these handles.

/** What the adapter is, as far as choosing kernels and "auto" is concerned. */
export type AdapterKind = "discrete" | "integrated" | "cpu" | "unknown";

export interface AdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  kind: AdapterKind;
  /** the native API under WebGPU: "vulkan", "metal", "d3d12", ... ("null" is rejected by device.ts) */
  backend: string;
  /** which driver and library, e.g. "bun:ffi Dawn from bun-webgpu-linux-x64" or "navigator.gpu" */
  driver: string;
  /** the smallest subgroup size the adapter may use (0 when it does not say) */
  subgroupMinSize: number;
}

export interface GpuLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupsPerDimension: number;
  minUniformBufferOffsetAlignment: number;
}

export interface GpuFeatures {
  shaderF16: boolean;
  subgroups: boolean;
}

/** An opaque device buffer of the driver. */
export interface GpuBuffer {
  readonly id: number;
  readonly size: number;
}
export interface GpuPipeline {
  readonly id: number;
  readonly label: string;
}
export interface GpuBindGroup {
  readonly id: number;
}

/** storage: kernel data (STORAGE | COPY_SRC | COPY_DST); uniform: params; readback: MAP_READ | COPY_DST */
export type BufferKind = "storage" | "uniform" | "readback";

export interface Binding {
  buffer: GpuBuffer;
  offset: number;
  size: number;
}

/** One recorded GPU command; a batch of them becomes one command buffer. */
export type Command =
  | { op: "dispatch"; pipeline: GpuPipeline; bindGroup: GpuBindGroup; x: number; y: number; z: number }
  | { op: "copy"; src: GpuBuffer; srcOffset: number; dst: GpuBuffer; dstOffset: number; size: number };

export interface GpuDriver {
  readonly info: AdapterInfo;
  readonly limits: GpuLimits;
  readonly features: GpuFeatures;
  /** Throws on out-of-memory where the driver learns of it synchronously. */
  createBuffer(size: number, kind: BufferKind, label: string): GpuBuffer;
  destroyBuffer(buffer: GpuBuffer): void;
  /** Queue-ordered write: after all work submitted before it, before all work submitted after. */
  writeBuffer(buffer: GpuBuffer, offset: number, data: ArrayBufferView): void;
  /** Compiles `entry` of `code` with override `constants`; throws with the compiler's message. */
  createPipeline(code: string, entry: string, constants: Record<string, number>, label: string): GpuPipeline;
  createBindGroup(pipeline: GpuPipeline, bindings: readonly Binding[]): GpuBindGroup;
  releaseBindGroup(group: GpuBindGroup): void;
  /** Encodes the commands into one command buffer and submits it. */
  submit(commands: readonly Command[]): void;
  /** Maps a readback buffer once all submitted work is done; resolves with a copy of its first `size` bytes. */
  read(buffer: GpuBuffer, size: number): Promise<ArrayBuffer>;
  /** Resolves when all submitted work has finished. */
  onIdle(): Promise<void>;
  /** Error messages the device reported since the last call (validation, out-of-memory, internal). */
  takeErrors(): string[];
  /** Why the device was lost, or null while it works. */
  readonly lostReason: string | null;
  /** Destroys the device behind the backend's back, as a driver reset or a removed GPU would
   *  (tests of device loss); the driver reports it through lostReason. dispose() uses destroy(). */
  simulateDeviceLoss(): void;
  destroy(): void;
}

/** Options for acquiring an adapter and device. */
export interface AcquireOptions {
  /** accept a software (CPU) adapter such as lavapipe */
  allowCpu: boolean;
  /** optional features to request where the adapter has them (default: all); `features` then
   *  reports what the device really got, so a feature left out here is off for every kernel */
  features?: Partial<GpuFeatures>;
}

/** An adapter/device provider: returns null when it has no usable adapter. */
export type DriverFactory = (options: AcquireOptions) => Promise<GpuDriver | null>;
