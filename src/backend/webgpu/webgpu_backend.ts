// The WebGPU backend: kiln's Backend protocol (../backend.ts) over any GpuDriver. Launches are
// recorded into a Batch and submitted as one command buffer when the host needs a result (download,
// flush) or new data goes in (upload); reads are asynchronous. Errors from the device (validation,
// out-of-memory, loss) become JS errors that name the kernel; after a device error the backend
// refuses further work instead of returning garbage. Not the kernels: see ops/*.ts and kernels/.
import { type Backend, checkOwner, type DeviceBuffer, type MemoryStats } from "../backend.ts";
import { KERNELS, type KernelName, type KernelParams } from "../kernels.ts";
import { Batch, MAX_PARAMS_BYTES } from "./batch.ts";
import { BufferPool, type WebGPUBuffer } from "./buffers.ts";
import type { GpuBuffer, GpuDriver, GpuFeatures } from "./driver.ts";
import type { KernelContext, KernelTable, Tuning } from "./launch.ts";
import { KERNEL_TABLE } from "./ops/index.ts";
import { PipelineCache } from "./pipelines.ts";
import { type ShaderFile, usesSubgroups } from "./shaders.ts";

export class WebGPUBackend implements Backend {
  readonly name = "webgpu" as const;
  readonly device: string;
  /** Kernel variants in use; chosen per adapter, changeable by tests and benchmarks. */
  tuning: Tuning;
  readonly driver: GpuDriver;
  readonly #storage: BufferPool;
  readonly #staging: BufferPool;
  readonly #pipelines: PipelineCache;
  readonly #batch: Batch;
  readonly #dummy: GpuBuffer;
  readonly #ctx: KernelContext;
  #failure: string | null = null;

  get autocastF16(): boolean {
    return this.driver.features.shaderF16;
  }
  #disposed = false;
  #temps: GpuBuffer[] = [];
  readonly #constants = new Map<string, GpuBuffer>();

  constructor(driver: GpuDriver, tuning: Tuning) {
    this.driver = driver;
    this.tuning = tuning;
    const i = driver.info;
    this.device = `${i.description || i.device} (${i.backend}, ${i.kind}; ${i.driver}; ${describeTuning(tuning, driver.features)})`;
    this.#storage = new BufferPool(driver, "storage");
    this.#staging = new BufferPool(driver, "readback");
    this.#pipelines = new PipelineCache(driver);
    this.#batch = new Batch(driver);
    this.#dummy = driver.createBuffer(256, "storage", "kiln dummy");
    const self = this;
    let kernel = "";
    this.#ctx = {
      get tuning() { return self.tuning; },
      limits: driver.limits,
      features: driver.features,
      dummy: this.#dummy,
      launch: (file: ShaderFile, entry, buffers, params, grid, constants = {}) => {
        if (params.length > MAX_PARAMS_BYTES) throw new Error(`[${kernel}] params exceed ${MAX_PARAMS_BYTES} bytes`);
        const subgroups = self.tuning.subgroups && driver.features.subgroups;
        if (usesSubgroups(file, subgroups)) constants = { ...constants, SG_MIN: driver.info.subgroupMinSize };
        const pipeline = this.#pipelines.get(kernel, file, entry, constants, subgroups);
        this.#batch.dispatch(kernel, pipeline, buffers, params, grid);
      },
      copy: (src, dst, bytes) => this.#batch.copy(src, 0, dst, 0, bytes),
      constant: (key, make) => {
        let b = this.#constants.get(key);
        if (!b) {
          const data = make();
          b = driver.createBuffer(Math.max(256, Math.ceil(data.byteLength / 4) * 4), "storage", key);
          driver.writeBuffer(b, 0, data); // a new buffer: no queued work reads it yet
          this.#constants.set(key, b);
        }
        return b;
      },
      temp: (bytes) => {
        let b: GpuBuffer;
        try {
          b = this.#storage.acquire(bytes);
        } catch (e) {
          throw new Error(`[${kernel}] WebGPU could not allocate a ${mib(bytes)} scratch buffer: ${(e as Error).message}`);
        }
        this.#temps.push(b);
        return b;
      },
    };
    this.#setKernel = (k) => { kernel = k; };
  }

  readonly #setKernel: (kernel: string) => void;

  alloc(bytes: number): DeviceBuffer {
    this.#check("alloc");
    const max = this.driver.limits.maxStorageBufferBindingSize;
    if (bytes > max) {
      throw new Error(`[alloc] ${bytes} bytes (${mib(bytes)}) exceed this adapter's maxStorageBufferBindingSize, ${max} bytes (${mib(max)})`);
    }
    let gpu: GpuBuffer;
    try {
      gpu = this.#storage.acquire(Math.max(bytes, 4));
    } catch (e) {
      throw new Error(`[alloc] WebGPU could not allocate ${mib(bytes)}: ${(e as Error).message}`);
    }
    const buffer: WebGPUBuffer = { backend: this, bytes, gpu, freed: false };
    return buffer;
  }

  free(buffer: DeviceBuffer): void {
    const b = this.#own(buffer, "free");
    if (b.freed) throw new Error("[free] buffer freed twice");
    b.freed = true;
    if (!this.#disposed) this.#storage.release(b.gpu);
  }

  upload(buffer: DeviceBuffer, data: ArrayBufferView, byteOffset = 0): void {
    const b = this.#own(buffer, "upload");
    this.#check("upload");
    if (byteOffset + data.byteLength > b.bytes) {
      throw new Error(`[upload] ${data.byteLength} bytes at offset ${byteOffset} do not fit a ${b.bytes}-byte buffer`);
    }
    if (byteOffset % 4 !== 0) throw new Error(`[upload] byteOffset ${byteOffset} is not a multiple of 4`);
    if (data.byteLength === 0) return;
    this.#submit(); // queued launches must read the old contents
    let bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (bytes.length % 4 !== 0) {
      const padded = new Uint8Array(Math.ceil(bytes.length / 4) * 4);
      padded.set(bytes);
      bytes = padded;
    }
    this.driver.writeBuffer(b.gpu, byteOffset, bytes);
  }

  async download(buffer: DeviceBuffer, bytes = buffer.bytes): Promise<ArrayBuffer> {
    const b = this.#own(buffer, "download");
    this.#check("download");
    if (bytes === 0) return new ArrayBuffer(0); // nothing to copy (a zero-size copy is an error in WebGPU)
    const size = Math.ceil(bytes / 4) * 4;
    const staging = this.#staging.acquire(size);
    try {
      this.#batch.copy(b.gpu, 0, staging, 0, size);
      const kernels = this.#submit();
      const data = await this.driver.read(staging, size).catch((e) => {
        throw this.#fail(kernels, this.#explain((e as Error).message));
      });
      this.#checkDevice(kernels);
      return bytes === size ? data : data.slice(0, bytes);
    } finally {
      this.#staging.release(staging);
    }
  }

  run<K extends KernelName>(kernel: K, inputs: readonly (DeviceBuffer | null)[], outputs: readonly DeviceBuffer[], params: KernelParams<K>): void {
    this.#check(kernel);
    this.#setKernel(kernel);
    const spec = KERNELS[kernel];
    spec.inputs.forEach((input, j) => {
      if (!inputs[j] && !input.endsWith("?")) throw new Error(`[${kernel}] input ${input} is required, got ${inputs[j]}`);
    });
    if (outputs.length !== spec.outputs.length) {
      throw new Error(`[${kernel}] expects ${spec.outputs.length} outputs (${spec.outputs.join(", ")}), got ${outputs.length}`);
    }
    const ins = inputs.map((x) => (x === null ? null : this.#own(x, kernel).gpu));
    const outs = outputs.map((x) => this.#own(x, kernel).gpu);
    // WebGPU forbids binding one buffer as both read-only and writable: read a copy instead.
    for (let j = 0; j < ins.length; j++) {
      const x = ins[j];
      if (x && outs.includes(x)) {
        const copy = this.#ctx.temp(x.size);
        this.#batch.copy(x, 0, copy, 0, x.size);
        ins[j] = copy;
      }
    }
    try {
      KERNEL_TABLE[kernel](this.#ctx, ins, outs, params as never);
    } finally {
      for (const t of this.#temps) this.#storage.release(t);
      this.#temps = [];
    }
    const errors = this.driver.takeErrors();
    if (errors.length) throw this.#fail([kernel], errors.join("; "));
  }

  async flush(): Promise<void> {
    this.#check("flush");
    const kernels = this.#submit();
    await this.driver.onIdle().catch((e) => {
      throw this.#fail(kernels, this.#explain((e as Error).message));
    });
    this.#checkDevice(kernels);
  }

  stats(): MemoryStats {
    return this.#storage.stats();
  }

  resetPeak(): void {
    this.#storage.resetPeak();
  }

  emptyCache(): void {
    if (this.#disposed) return;
    this.#batch.reset();
    this.#storage.trim();
    this.#staging.trim();
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#failure ??= "the backend was disposed";
    this.#batch.destroy();
    this.driver.destroy(); // destroys the device and, with it, every buffer
  }

  /** Pipelines compiled so far (tests, benchmarks). */
  get pipelineCount(): number {
    return this.#pipelines.size;
  }

  #submit(): string[] {
    const kernels = this.#batch.submit();
    const errors = this.driver.takeErrors();
    if (errors.length) throw this.#fail(kernels, errors.join("; "));
    return kernels;
  }

  #checkDevice(kernels: string[]): void {
    const errors = this.driver.takeErrors();
    if (errors.length) throw this.#fail(kernels, errors.join("; "));
    if (this.driver.lostReason) throw this.#fail(kernels, `WebGPU device lost: ${this.driver.lostReason}`);
  }

  /** A failed wait's message, led by the device loss that caused it (when that is the cause). */
  #explain(message: string): string {
    const lost = this.driver.lostReason;
    return lost ? `WebGPU device lost: ${lost} (${message})` : message;
  }

  /** Records a device failure (the backend is unusable afterwards) and returns the error to throw. */
  #fail(kernels: string[], message: string): Error {
    const names = kernels.length ? kernels.join(", ") : "webgpu";
    this.#failure ??= `[${names}] ${message}`;
    return new Error(`[${names}] ${message}`);
  }

  #check(op: string): void {
    if (this.driver.lostReason && !this.#failure) this.#failure = `WebGPU device lost: ${this.driver.lostReason}`;
    if (this.#failure) throw new Error(`[${op}] the WebGPU backend cannot run after an earlier failure: ${this.#failure}`);
  }

  #own(buffer: DeviceBuffer, op: string): WebGPUBuffer {
    checkOwner(this, buffer, op);
    const b = buffer as WebGPUBuffer;
    if (b.freed && op !== "free") throw new Error(`[${op}] buffer was freed`);
    return b;
  }
}

/** The tuning in words, for backend.device: "matmul: matmul, gemv, subgroups, rows 64, f32". */
export function describeTuning(t: Tuning, features: GpuFeatures): string {
  const words = [`matmul: ${t.matmul}`];
  if (t.gemv > 0) words.push(`gemv ${t.gemv}`);
  words.push(t.subgroups && features.subgroups ? "subgroups" : "no subgroups");
  words.push(`rows ${t.rowThreads}`);
  if (t.attentionRows > 0) words.push(`attention_row <= ${t.attentionRows} rows`);
  words.push(t.f16 && features.shaderF16 ? "f16 matmul" : "f32");
  return words.join(", ");
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
