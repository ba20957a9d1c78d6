// Device memory for the WebGPU backend: a pool of storage buffers by size class (four classes per
// power of two, so at most 25% slack), and a pool of read-back staging buffers. Reuse is safe
// without fences: a buffer freed while queued work still reads it is only written by work queued
// later, and the queue runs in order. Not the allocator of tensors (src/tensor): it sees bytes only.
import type { DeviceBuffer, MemoryStats } from "../backend.ts";
import type { BufferKind, GpuBuffer, GpuDriver } from "./driver.ts";

/** The size a request of `bytes` is rounded up to. */
export function sizeClass(bytes: number): number {
  if (bytes <= 256) return 256;
  const step = 2 ** Math.floor(Math.log2(bytes - 1)) / 4;
  return Math.ceil(bytes / step) * step;
}

export class BufferPool {
  readonly #driver: GpuDriver;
  readonly #kind: BufferKind;
  readonly #free = new Map<number, GpuBuffer[]>();
  #allocated = 0;
  #peak = 0;
  #live = 0;
  #pooled = 0;

  constructor(driver: GpuDriver, kind: BufferKind) {
    this.#driver = driver;
    this.#kind = kind;
  }

  /** A buffer of at least `bytes` bytes; on out-of-memory, empties the pool and tries once more. */
  acquire(bytes: number): GpuBuffer {
    const size = sizeClass(bytes);
    const list = this.#free.get(size);
    let buffer = list?.pop();
    if (buffer) {
      this.#pooled -= size;
    } else {
      try {
        buffer = this.#driver.createBuffer(size, this.#kind, `kiln ${this.#kind} ${size}`);
      } catch {
        this.trim();
        buffer = this.#driver.createBuffer(size, this.#kind, `kiln ${this.#kind} ${size}`);
      }
    }
    this.#allocated += size;
    this.#live++;
    this.#peak = Math.max(this.#peak, this.#allocated);
    return buffer;
  }

  release(buffer: GpuBuffer): void {
    let list = this.#free.get(buffer.size);
    if (!list) this.#free.set(buffer.size, (list = []));
    list.push(buffer);
    this.#allocated -= buffer.size;
    this.#live--;
    this.#pooled += buffer.size;
  }

  /** Destroys every pooled buffer (the caller has submitted all work that might use them). */
  trim(): void {
    for (const list of this.#free.values()) for (const b of list) this.#driver.destroyBuffer(b);
    this.#free.clear();
    this.#pooled = 0;
  }

  stats(): MemoryStats {
    return { allocatedBytes: this.#allocated, peakBytes: this.#peak, buffers: this.#live, pooledBytes: this.#pooled };
  }

  resetPeak(): void {
    this.#peak = this.#allocated;
  }
}

/** The backend's DeviceBuffer: the pool's GPU buffer plus the size asked for. */
export interface WebGPUBuffer extends DeviceBuffer {
  readonly gpu: GpuBuffer;
  freed: boolean;
}
