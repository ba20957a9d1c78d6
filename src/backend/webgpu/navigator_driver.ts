// The navigator.gpu driver: kiln's GpuDriver (driver.ts) over the WebGPU JS API, for runtimes
// that have it (Deno, whose WebGPU is wgpu; browsers). Errors arrive asynchronously through the
// device's uncapturederror event and are reported by takeErrors() at the next submit or read.
import type {
  AcquireOptions, AdapterInfo, AdapterKind, Binding, BufferKind, Command, GpuBindGroup, GpuBuffer, GpuDriver,
  GpuFeatures, GpuLimits, GpuPipeline,
} from "./driver.ts";

interface NavBuffer extends GpuBuffer { handle: GPUBuffer }
interface NavPipeline extends GpuPipeline { handle: GPUComputePipeline; layout: GPUBindGroupLayout }
interface NavBindGroup extends GpuBindGroup { handle: GPUBindGroup }

/** Software renderers: lavapipe/llvmpipe, SwiftShader, WARP, Apple's paravirtual device. */
const SOFTWARE = /llvmpipe|lavapipe|softpipe|swiftshader|warp|microsoft basic render|software/i;

const LIMITS = [
  "maxStorageBufferBindingSize", "maxBufferSize", "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup", "maxComputeWorkgroupsPerDimension", "maxComputeWorkgroupSizeX",
] as const;

export async function createNavigatorDriver(options: AcquireOptions): Promise<GpuDriver | null> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) return null;
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) return null;
  const raw = (adapter.info ?? {}) as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const text = `${raw.vendor} ${raw.architecture} ${raw.device} ${raw.description}`;
  const fallback = raw.isFallbackAdapter ?? (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter;
  const kind: AdapterKind = fallback || SOFTWARE.test(text) ? "cpu" : "unknown";
  if (kind === "cpu" && !options.allowCpu) return null;
  const info: AdapterInfo = {
    vendor: raw.vendor ?? "", architecture: raw.architecture ?? "", device: raw.device ?? "",
    description: raw.description ?? "", kind, backend: "webgpu", driver: "navigator.gpu",
    subgroupMinSize: (raw as { subgroupMinSize?: number }).subgroupMinSize ?? 0,
  };
  const want = options.features ?? {};
  const features: GpuFeatures = {
    shaderF16: want.shaderF16 !== false && adapter.features.has("shader-f16"),
    subgroups: want.subgroups !== false && adapter.features.has("subgroups"),
  };
  const requiredLimits: Record<string, number> = {};
  for (const k of LIMITS) requiredLimits[k] = adapter.limits[k];
  const device = await adapter.requestDevice({
    requiredFeatures: [...(features.shaderF16 ? ["shader-f16"] : []), ...(features.subgroups ? ["subgroups"] : [])] as GPUFeatureName[],
    requiredLimits,
  });
  return new NavigatorDriver(device, info, features);
}

class NavigatorDriver implements GpuDriver {
  readonly info: AdapterInfo;
  readonly limits: GpuLimits;
  readonly features: GpuFeatures;
  lostReason: string | null = null;
  readonly #device: GPUDevice;
  readonly #modules = new Map<string, GPUShaderModule>();
  #errors: string[] = [];
  #nextId = 1;
  #destroyed = false;

  constructor(device: GPUDevice, info: AdapterInfo, features: GpuFeatures) {
    this.#device = device;
    this.info = info;
    this.features = features;
    const l = device.limits;
    this.limits = {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize, maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      minUniformBufferOffsetAlignment: l.minUniformBufferOffsetAlignment,
    };
    device.addEventListener("uncapturederror", (e) => {
      const error = (e as GPUUncapturedErrorEvent).error;
      const type = error instanceof GPUOutOfMemoryError ? "out-of-memory" : error instanceof GPUValidationError ? "validation" : "internal";
      this.#errors.push(`${type} error: ${error.message}`);
    });
    // destroyed by dispose(): not "lost"; destroyed by anyone else (simulateDeviceLoss): lost
    device.lost.then((lost) => {
      if (this.#destroyed) return;
      this.lostReason = lost.reason === "destroyed" ? `the device was destroyed${lost.message ? ` (${lost.message})` : ""}` : lost.message || "unknown reason";
    });
  }

  createBuffer(size: number, kind: BufferKind, label: string): GpuBuffer {
    const U = GPUBufferUsage;
    const usage = kind === "storage" ? U.STORAGE | U.COPY_SRC | U.COPY_DST : kind === "uniform" ? U.UNIFORM | U.COPY_DST : U.MAP_READ | U.COPY_DST;
    const handle = this.#device.createBuffer({ size, usage, label });
    return { id: this.#nextId++, size, handle } as NavBuffer;
  }

  destroyBuffer(buffer: GpuBuffer): void {
    (buffer as NavBuffer).handle.destroy();
  }

  writeBuffer(buffer: GpuBuffer, offset: number, data: ArrayBufferView): void {
    this.#device.queue.writeBuffer((buffer as NavBuffer).handle, offset, data.buffer, data.byteOffset, data.byteLength);
  }

  createPipeline(code: string, entry: string, constants: Record<string, number>, label: string): GpuPipeline {
    let module = this.#modules.get(code);
    if (!module) {
      module = this.#device.createShaderModule({ code });
      this.#modules.set(code, module);
    }
    const handle = this.#device.createComputePipeline({ label, layout: "auto", compute: { module, entryPoint: entry, constants } });
    return { id: this.#nextId++, label, handle, layout: handle.getBindGroupLayout(0) } as NavPipeline;
  }

  createBindGroup(pipeline: GpuPipeline, bindings: readonly Binding[]): GpuBindGroup {
    const handle = this.#device.createBindGroup({
      layout: (pipeline as NavPipeline).layout,
      entries: bindings.map((b, i) => ({ binding: i, resource: { buffer: (b.buffer as NavBuffer).handle, offset: b.offset, size: b.size } })),
    });
    return { id: this.#nextId++, handle } as NavBindGroup;
  }

  releaseBindGroup(_group: GpuBindGroup): void {
    // garbage-collected in the JS API
  }

  submit(commands: readonly Command[]): void {
    if (commands.length === 0) return;
    const encoder = this.#device.createCommandEncoder();
    let pass: GPUComputePassEncoder | null = null;
    let bound: GpuPipeline | null = null;
    for (const c of commands) {
      if (c.op === "dispatch") {
        if (!pass) {
          pass = encoder.beginComputePass();
          bound = null;
        }
        if (c.pipeline !== bound) pass.setPipeline((c.pipeline as NavPipeline).handle);
        bound = c.pipeline;
        pass.setBindGroup(0, (c.bindGroup as NavBindGroup).handle);
        pass.dispatchWorkgroups(c.x, c.y, c.z);
      } else {
        pass?.end();
        pass = null;
        encoder.copyBufferToBuffer((c.src as NavBuffer).handle, c.srcOffset, (c.dst as NavBuffer).handle, c.dstOffset, c.size);
      }
    }
    pass?.end();
    this.#device.queue.submit([encoder.finish()]);
  }

  async read(buffer: GpuBuffer, size: number): Promise<ArrayBuffer> {
    const handle = (buffer as NavBuffer).handle;
    await handle.mapAsync(GPUMapMode.READ, 0, buffer.size);
    const copy = handle.getMappedRange(0, buffer.size).slice(0, size);
    handle.unmap();
    return copy;
  }

  async onIdle(): Promise<void> {
    await this.#device.queue.onSubmittedWorkDone();
  }

  takeErrors(): string[] {
    return this.#errors.splice(0);
  }

  simulateDeviceLoss(): void {
    if (!this.#destroyed) this.#device.destroy();
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#device.destroy();
  }
}
