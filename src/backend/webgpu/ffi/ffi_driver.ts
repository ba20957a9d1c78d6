// The Bun driver: kiln's GpuDriver (../driver.ts) over a native webgpu.h library through bun:ffi.
// Waiting: Dawn blocks in wgpuInstanceWaitAny (instance created with timed wait enabled; no CPU
// burnt, no setImmediate busy-poll); wgpu-native, whose WaitAny is not implemented, blocks in
// wgpuDevicePoll(wait = true). The wait runs in a microtask after the request is queued, so the
// caller can keep encoding until it awaits. Errors: Dawn calls the uncaptured-error callback
// synchronously on the failing call, so createBuffer/createPipeline throw at once.
import { cc, dlopen, JSCallback, ptr, toArrayBuffer, FFIType as T, type Pointer } from "bun:ffi";
import { join } from "node:path";
import type {
  AcquireOptions, AdapterInfo, Binding, BufferKind, Command, GpuBindGroup, GpuBuffer, GpuDriver, GpuFeatures,
  GpuLimits, GpuPipeline,
} from "../driver.ts";
import type { NativeLibrary } from "./library.ts";
import {
  ADAPTER_TYPES, Arena, BACKEND_TYPES, bindGroupDescriptor, BUFFER_USAGE, bufferDescriptor, CALLBACK_MODE,
  computePipelineDescriptor, deviceDescriptor, ERROR_TYPES, FEATURES, instanceDescriptor, LOST_REASON_DESTROYED,
  MAP_MODE_READ, readAdapterInfo, readLimits, requestAdapterOptions, shaderModuleDescriptor, STATUS_SUCCESS,
  stringView, U64_MAX, WAIT_SUCCESS,
} from "./structs.ts";
import { SHIM_SYMBOLS, SYMBOLS, WGPU_NATIVE_SYMBOLS } from "./symbols.ts";

type Lib = ReturnType<typeof dlopen<typeof SYMBOLS & typeof WGPU_NATIVE_SYMBOLS>>["symbols"];
type Shim = ReturnType<typeof cc<typeof SHIM_SYMBOLS>>["symbols"];

interface FfiBuffer extends GpuBuffer { handle: Pointer }
interface FfiPipeline extends GpuPipeline { handle: Pointer; layout: Pointer }
interface FfiBindGroup extends GpuBindGroup { handle: Pointer }
interface Outcome { status: number; handle: Pointer | null; message: string }

/** The native address of a dlopen'ed symbol (for the shim, which calls it with by-value structs). */
const addressOf = (fn: unknown): Pointer => (fn as { ptr: Pointer }).ptr;

const USAGE: Record<BufferKind, number> = {
  storage: BUFFER_USAGE.storage | BUFFER_USAGE.copySrc | BUFFER_USAGE.copyDst,
  uniform: BUFFER_USAGE.uniform | BUFFER_USAGE.copyDst,
  readback: BUFFER_USAGE.mapRead | BUFFER_USAGE.copyDst,
};

/** Opens `library`, picks its adapter and makes a device; null when it has no usable adapter. */
export async function createFfiDriver(library: NativeLibrary, options: AcquireOptions): Promise<GpuDriver | null> {
  const driver = new FfiDriver(library);
  try {
    return driver.init(options) ? driver : (driver.destroy(), null);
  } catch (e) {
    driver.destroy();
    throw e;
  }
}

class FfiDriver implements GpuDriver {
  info!: AdapterInfo;
  limits!: GpuLimits;
  features: GpuFeatures = { shaderF16: false, subgroups: false };
  lostReason: string | null = null;
  readonly #library: NativeLibrary;
  readonly #lib: Lib;
  readonly #shim: Shim;
  readonly #callbacks: JSCallback[];
  readonly #outcomes = new Map<number, Outcome>();
  readonly #modules = new Map<string, Pointer>();
  readonly #pipelines: FfiPipeline[] = [];
  #errors: string[] = [];
  #nextId = 1;
  #instance: Pointer | null = null;
  #adapter: Pointer | null = null;
  #device: Pointer | null = null;
  #queue: Pointer | null = null;
  #destroyed = false;
  readonly #wait = new BigUint64Array(2);
  readonly #one = new BigUint64Array(1);

  constructor(library: NativeLibrary) {
    this.#library = library;
    const symbols = library.flavor === "wgpu-native" ? { ...SYMBOLS, ...WGPU_NATIVE_SYMBOLS } : SYMBOLS;
    this.#lib = dlopen(library.path, symbols).symbols as Lib;
    this.#shim = cc({ source: join(import.meta.dir, "shim.c"), symbols: SHIM_SYMBOLS }).symbols;
    const onRequest = new JSCallback(
      (status: number, handle: Pointer | null, msg: Pointer | null, len: bigint, id: number) =>
        this.#outcomes.set(Number(id), { status, handle, message: stringView(msg, len) }),
      { args: [T.u32, T.ptr, T.ptr, T.u64, T.u64], returns: T.void },
    );
    const onStatus = new JSCallback(
      (status: number, msg: Pointer | null, len: bigint, id: number) =>
        this.#outcomes.set(Number(id), { status, handle: null, message: stringView(msg, len) }),
      { args: [T.u32, T.ptr, T.u64, T.u64], returns: T.void },
    );
    // Called synchronously on the thread making the failing call: a plain (not threadsafe) JSCallback.
    const onError = new JSCallback(
      (type: number, msg: Pointer | null, len: bigint) => this.#errors.push(`${ERROR_TYPES[type] ?? "unknown"} error: ${stringView(msg, len)}`),
      { args: [T.u32, T.ptr, T.u64], returns: T.void },
    );
    // A device destroyed by dispose() is not "lost"; destroyed by anyone else (simulateDeviceLoss), it is.
    const onLost = new JSCallback(
      (reason: number, msg: Pointer | null, len: bigint) => {
        if (this.#destroyed) return;
        const text = stringView(msg, len);
        this.lostReason = reason === LOST_REASON_DESTROYED ? `the device was destroyed${text ? ` (${text})` : ""}` : text || `reason ${reason}`;
      },
      { args: [T.u32, T.ptr, T.u64], returns: T.void },
    );
    this.#callbacks = [onRequest, onStatus, onError, onLost];
    this.#shim.kiln_set_callbacks(onRequest.ptr, onStatus.ptr, onError.ptr, onLost.ptr);
  }

  /** Instance, adapter (checked against options), device, queue. False when the adapter is unusable. */
  init(options: AcquireOptions): boolean {
    const L = this.#lib, a = new Arena(), flavor = this.#library.flavor;
    const desc = instanceDescriptor(flavor, a);
    this.#instance = L.wgpuCreateInstance(desc ? ptr(desc) : null) as Pointer | null;
    if (!this.#instance) throw new Error(`[webgpu] wgpuCreateInstance failed in ${this.#library.path}`);
    const adapter = this.#request(addressOf(L.wgpuInstanceRequestAdapter), this.#instance, ptr(requestAdapterOptions(a)));
    if (adapter.status !== STATUS_SUCCESS || !adapter.handle) return false;
    this.#adapter = adapter.handle;
    const raw = new BigUint64Array(12);
    L.wgpuAdapterGetInfo(this.#adapter, ptr(raw));
    const info = readAdapterInfo(raw);
    this.#shim.kiln_adapter_info_free(addressOf(L.wgpuAdapterInfoFreeMembers), ptr(raw));
    const backend = BACKEND_TYPES[info.backendType] ?? `backend ${info.backendType}`;
    const kind = ADAPTER_TYPES[info.adapterType as keyof typeof ADAPTER_TYPES] ?? "unknown";
    this.info = {
      vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description,
      kind, backend, driver: `bun:ffi ${this.#library.source}`, subgroupMinSize: info.subgroupMinSize,
    };
    // Dawn hands out its "null" backend (garbage results) when no real driver works: no adapter.
    if (backend === "null" || info.device === "null-backend") return false;
    if (kind === "cpu" && !options.allowCpu) return false;
    const limits = new BigUint64Array(32); // WGPULimits, requested back as the device's limits
    if (L.wgpuAdapterGetLimits(this.#adapter, ptr(limits)) !== STATUS_SUCCESS) throw new Error("[webgpu] wgpuAdapterGetLimits failed");
    this.limits = readLimits(limits);
    const ids = FEATURES[flavor];
    const want = options.features ?? {};
    this.features = {
      shaderF16: want.shaderF16 !== false && L.wgpuAdapterHasFeature(this.#adapter, ids.shaderF16) !== 0,
      subgroups: want.subgroups !== false && L.wgpuAdapterHasFeature(this.#adapter, ids.subgroups) !== 0,
    };
    const wanted = [...(this.features.shaderF16 ? [ids.shaderF16] : []), ...(this.features.subgroups ? [ids.subgroups] : [])];
    const dd = deviceDescriptor(a, wanted, limits, this.#shim.kiln_lost_trampoline() as Pointer, this.#shim.kiln_error_trampoline() as Pointer);
    const device = this.#request(addressOf(L.wgpuAdapterRequestDevice), this.#adapter, ptr(dd));
    if (device.status !== STATUS_SUCCESS || !device.handle) {
      throw new Error(`[webgpu] requestDevice failed on ${info.device}: ${device.message}`);
    }
    this.#device = device.handle;
    this.#queue = L.wgpuDeviceGetQueue(this.#device) as Pointer;
    return true;
  }

  createBuffer(size: number, kind: BufferKind, label: string): GpuBuffer {
    const before = this.#errors.length;
    const handle = this.#lib.wgpuDeviceCreateBuffer(this.#device, ptr(bufferDescriptor(new Arena(), USAGE[kind], size, label))) as Pointer | null;
    const errors = this.#errors.splice(before);
    if (!handle || errors.length) {
      if (handle) this.#releaseBuffer(handle);
      throw new Error(errors.join("; ") || `wgpuDeviceCreateBuffer(${size}) returned NULL`);
    }
    return { id: this.#nextId++, size, handle } as FfiBuffer;
  }

  destroyBuffer(buffer: GpuBuffer): void {
    this.#releaseBuffer((buffer as FfiBuffer).handle);
  }

  writeBuffer(buffer: GpuBuffer, offset: number, data: ArrayBufferView): void {
    this.#lib.wgpuQueueWriteBuffer(this.#queue, (buffer as FfiBuffer).handle, offset, ptr(data as Uint8Array), data.byteLength);
  }

  createPipeline(code: string, entry: string, constants: Record<string, number>, label: string): GpuPipeline {
    const L = this.#lib, before = this.#errors.length;
    let module = this.#modules.get(code);
    if (!module) {
      module = L.wgpuDeviceCreateShaderModule(this.#device, ptr(shaderModuleDescriptor(new Arena(), code))) as Pointer;
      const errors = this.#errors.splice(before);
      if (!module || errors.length) {
        if (module) L.wgpuShaderModuleRelease(module);
        throw new Error(`WGSL compilation failed: ${errors.join("; ")}`);
      }
      this.#modules.set(code, module);
    }
    const handle = L.wgpuDeviceCreateComputePipeline(this.#device, ptr(computePipelineDescriptor(new Arena(), module, entry, constants, label))) as Pointer | null;
    const errors = this.#errors.splice(before);
    if (!handle || errors.length) {
      if (handle) L.wgpuComputePipelineRelease(handle);
      throw new Error(`pipeline ${label} failed: ${errors.join("; ")}`);
    }
    const pipeline: FfiPipeline = { id: this.#nextId++, label, handle, layout: L.wgpuComputePipelineGetBindGroupLayout(handle, 0) as Pointer };
    this.#pipelines.push(pipeline);
    return pipeline;
  }

  createBindGroup(pipeline: GpuPipeline, bindings: readonly Binding[]): GpuBindGroup {
    const entries = bindings.map((b) => ({ handle: (b.buffer as FfiBuffer).handle, offset: b.offset, size: b.size }));
    const desc = bindGroupDescriptor(new Arena(), (pipeline as FfiPipeline).layout, entries);
    const handle = this.#lib.wgpuDeviceCreateBindGroup(this.#device, ptr(desc)) as Pointer;
    return { id: this.#nextId++, handle } as FfiBindGroup;
  }

  releaseBindGroup(group: GpuBindGroup): void {
    this.#lib.wgpuBindGroupRelease((group as FfiBindGroup).handle);
  }

  submit(commands: readonly Command[]): void {
    if (commands.length === 0) return;
    const L = this.#lib;
    const encoder = L.wgpuDeviceCreateCommandEncoder(this.#device, null) as Pointer;
    let pass: Pointer | null = null;
    let bound: GpuPipeline | null = null;
    for (const c of commands) {
      if (c.op === "dispatch") {
        if (!pass) {
          pass = L.wgpuCommandEncoderBeginComputePass(encoder, null) as Pointer;
          bound = null;
        }
        if (c.pipeline !== bound) L.wgpuComputePassEncoderSetPipeline(pass, (c.pipeline as FfiPipeline).handle);
        bound = c.pipeline;
        L.wgpuComputePassEncoderSetBindGroup(pass, 0, (c.bindGroup as FfiBindGroup).handle, 0, null);
        L.wgpuComputePassEncoderDispatchWorkgroups(pass, c.x, c.y, c.z);
      } else {
        if (pass) {
          L.wgpuComputePassEncoderEnd(pass);
          L.wgpuComputePassEncoderRelease(pass);
          pass = null;
        }
        L.wgpuCommandEncoderCopyBufferToBuffer(encoder, (c.src as FfiBuffer).handle, c.srcOffset, (c.dst as FfiBuffer).handle, c.dstOffset, c.size);
      }
    }
    if (pass) {
      L.wgpuComputePassEncoderEnd(pass);
      L.wgpuComputePassEncoderRelease(pass);
    }
    const commandBuffer = L.wgpuCommandEncoderFinish(encoder, null) as Pointer;
    L.wgpuCommandEncoderRelease(encoder);
    this.#one[0] = BigInt(commandBuffer);
    L.wgpuQueueSubmit(this.#queue, 1, ptr(this.#one));
    L.wgpuCommandBufferRelease(commandBuffer);
  }

  async read(buffer: GpuBuffer, size: number): Promise<ArrayBuffer> {
    const handle = (buffer as FfiBuffer).handle, id = this.#nextId++;
    const future = this.#shim.kiln_map(addressOf(this.#lib.wgpuBufferMapAsync), handle, MAP_MODE_READ, 0, buffer.size, this.#mode(), id);
    await Promise.resolve(); // let the caller finish encoding before this thread blocks
    if (this.#destroyed) throw new Error("the device was destroyed before the read finished");
    const outcome = this.#waitFor(future, id);
    if (outcome.status !== STATUS_SUCCESS) throw new Error(`mapAsync failed (status ${outcome.status}): ${outcome.message}`);
    const data = this.#lib.wgpuBufferGetConstMappedRange(handle, 0, buffer.size) as Pointer;
    const copy = toArrayBuffer(data, 0, size).slice(0);
    this.#lib.wgpuBufferUnmap(handle);
    return copy;
  }

  async onIdle(): Promise<void> {
    const id = this.#nextId++;
    const future = this.#shim.kiln_work_done(addressOf(this.#lib.wgpuQueueOnSubmittedWorkDone), this.#queue, this.#mode(), id);
    await Promise.resolve();
    if (this.#destroyed) throw new Error("the device was destroyed before its work finished");
    const outcome = this.#waitFor(future, id);
    this.#lib.wgpuInstanceProcessEvents(this.#instance); // delivers device-lost callbacks
    if (outcome.status !== STATUS_SUCCESS) throw new Error(`onSubmittedWorkDone failed (status ${outcome.status}): ${outcome.message}`);
  }

  takeErrors(): string[] {
    return this.#errors.splice(0);
  }

  simulateDeviceLoss(): void {
    if (this.#destroyed || !this.#device) return;
    this.#lib.wgpuDeviceDestroy(this.#device);
    this.#lib.wgpuInstanceProcessEvents(this.#instance); // delivers the device-lost callback
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    const L = this.#lib;
    for (const p of this.#pipelines) {
      L.wgpuBindGroupLayoutRelease(p.layout);
      L.wgpuComputePipelineRelease(p.handle);
    }
    for (const m of this.#modules.values()) L.wgpuShaderModuleRelease(m);
    if (this.#queue) L.wgpuQueueRelease(this.#queue);
    if (this.#device) {
      L.wgpuDeviceDestroy(this.#device);
      L.wgpuDeviceRelease(this.#device);
    }
    if (this.#adapter) L.wgpuAdapterRelease(this.#adapter);
    if (this.#instance) {
      L.wgpuInstanceProcessEvents(this.#instance);
      L.wgpuInstanceRelease(this.#instance);
    }
    for (const cb of this.#callbacks) cb.close();
  }

  #releaseBuffer(handle: Pointer): void {
    this.#lib.wgpuBufferDestroy(handle);
    this.#lib.wgpuBufferRelease(handle);
  }

  #mode(): number {
    return this.#library.flavor === "wgpu-native" ? CALLBACK_MODE.allowProcessEvents : CALLBACK_MODE.waitAnyOnly;
  }

  /** Starts an adapter/device request through the shim and waits for its callback. */
  #request(fn: Pointer | null, object: Pointer, options: Pointer): Outcome {
    const id = this.#nextId++;
    const future = this.#shim.kiln_request(fn, object, options, this.#mode(), id);
    return this.#waitFor(future, id);
  }

  /** Blocks until the callback of request `id` (future `future`) has run; never spins. */
  #waitFor(future: bigint | number, id: number): Outcome {
    const L = this.#lib;
    if (this.#library.flavor === "wgpu-native") {
      for (let i = 0; i < 1000 && !this.#outcomes.has(id); i++) {
        if (this.#device) L.wgpuDevicePoll(this.#device, 1, null);
        L.wgpuInstanceProcessEvents(this.#instance);
      }
    } else if (!this.#outcomes.has(id)) {
      this.#wait[0] = BigInt(future);
      this.#wait[1] = 0n;
      const status = L.wgpuInstanceWaitAny(this.#instance, 1, ptr(this.#wait), U64_MAX);
      if (status !== WAIT_SUCCESS) throw new Error(`wgpuInstanceWaitAny returned status ${status}`);
    }
    const outcome = this.#outcomes.get(id);
    this.#outcomes.delete(id);
    if (!outcome) throw new Error(this.lostReason ? `device lost: ${this.lostReason}` : "a WebGPU callback never ran");
    return outcome;
  }
}
