// The TS-side allocator over the kernels' linear memory (the AssemblyScript runtime is a stub and
// never allocates): 64-byte-aligned blocks in size classes (64-byte steps up to 1 KiB, then 8 per
// doubling, ≤ 12.5% waste), freed blocks kept in per-class free lists and handed out again before
// the heap grows, so a training step that allocates and frees the same sizes reaches a steady state.
// A WebAssembly.Memory can grow but never shrink: emptyCache() only returns pooled blocks at the
// top of the heap to the bump region (reused for any size); pooled blocks below stay in their lists.

import type { MemoryStats } from "../backend.ts";

const ALIGN = 64;
const PAGE = 65536;
const MAX_PAGES = 65536;

/** The block size a request of `bytes` gets. */
export function sizeClass(bytes: number): number {
  const b = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
  if (b <= 1024) return b;
  const step = 2 ** (Math.floor(Math.log2(b - 1)) - 3); // 8 classes per doubling
  return Math.ceil(b / step) * step;
}

export class WasmAllocator {
  /** the bump pointer: everything in [base, top) is a live or pooled block */
  #top: number;
  readonly #free = new Map<number, number[]>(); // class size -> pooled block pointers
  readonly #freeByEnd = new Map<number, number>(); // end offset -> pooled block pointer (top trimming)
  readonly #live = new Map<number, number>(); // pointer -> class size
  readonly #untracked = new Set<number>(); // live blocks kept out of stats (kernel scratch)
  #allocated = 0;
  #peak = 0;
  #buffers = 0;
  #pooled = 0;

  constructor(
    readonly memory: WebAssembly.Memory,
    readonly base: number,
  ) {
    this.#top = Math.ceil(base / ALIGN) * ALIGN;
  }

  /**
   * A block of at least `bytes` bytes (64-byte aligned, contents undefined). `tracked: false`
   * keeps it out of stats() (backend-internal scratch).
   */
  alloc(bytes: number, tracked = true): number {
    if (!(bytes >= 0) || !Number.isFinite(bytes)) throw new Error(`[wasm] cannot allocate ${bytes} bytes`);
    let size = sizeClass(bytes);
    let ptr = this.#popFree(size);
    if (ptr === undefined) ({ ptr, size } = this.#bump(size));
    this.#live.set(ptr, size);
    if (tracked) {
      this.#allocated += size;
      this.#buffers++;
      if (this.#allocated > this.#peak) this.#peak = this.#allocated;
    } else {
      this.#untracked.add(ptr);
    }
    return ptr;
  }

  free(ptr: number): void {
    const size = this.#live.get(ptr);
    if (size === undefined) throw new Error(`[wasm] free of pointer ${ptr}, which is not a live block (freed twice?)`);
    this.#live.delete(ptr);
    if (this.#untracked.delete(ptr) === false) {
      this.#allocated -= size;
      this.#buffers--;
    }
    this.#pushFree(ptr, size);
  }

  /** The block size behind a live pointer. */
  sizeOf(ptr: number): number | undefined {
    return this.#live.get(ptr);
  }

  stats(): MemoryStats {
    return { allocatedBytes: this.#allocated, peakBytes: this.#peak, buffers: this.#buffers, pooledBytes: this.#pooled };
  }

  resetPeak(): void {
    this.#peak = this.#allocated;
  }

  /** Returns pooled blocks at the top of the heap to the bump region (memory itself cannot shrink). */
  emptyCache(): void {
    this.#trimTop();
  }

  /** Bytes between the heap base and the bump pointer (live + pooled + alignment waste). */
  get heapBytes(): number {
    return this.#top - this.base;
  }

  #popFree(size: number): number | undefined {
    const list = this.#free.get(size);
    if (!list || list.length === 0) return undefined;
    const ptr = list.pop()!;
    this.#freeByEnd.delete(ptr + size);
    this.#pooled -= size;
    return ptr;
  }

  #pushFree(ptr: number, size: number): void {
    let list = this.#free.get(size);
    if (!list) this.#free.set(size, (list = []));
    list.push(ptr);
    this.#freeByEnd.set(ptr + size, ptr);
    this.#pooled += size;
  }

  #removeFree(ptr: number, size: number): void {
    const list = this.#free.get(size)!;
    const i = list.lastIndexOf(ptr);
    list[i] = list[list.length - 1];
    list.pop();
    this.#freeByEnd.delete(ptr + size);
    this.#pooled -= size;
  }

  /** Lowers the bump pointer over pooled blocks that end at it. */
  #trimTop(): void {
    for (;;) {
      const ptr = this.#freeByEnd.get(this.#top);
      if (ptr === undefined) return;
      this.#removeFree(ptr, this.#top - ptr);
      this.#top = ptr;
    }
  }

  /** A block of `size` bytes past the pooled lists: from the bump region, growing memory if needed. */
  #bump(size: number): { ptr: number; size: number } {
    if (this.#top + size > this.memory.buffer.byteLength) {
      // before growing: reclaim pooled blocks at the top, then try a pooled block up to 2x too big
      this.#trimTop();
      if (this.#top + size > this.memory.buffer.byteLength) {
        const cls = this.#largerClass(size);
        if (cls !== undefined) return { ptr: this.#popFree(cls)!, size: cls };
        this.#grow(this.#top + size);
      }
    }
    const ptr = this.#top;
    this.#top += size;
    return { ptr, size };
  }

  /** The smallest class in (size, 2·size] with a pooled block. */
  #largerClass(size: number): number | undefined {
    let best: number | undefined;
    for (const [cls, list] of this.#free) {
      if (list.length > 0 && cls > size && cls <= 2 * size && (best === undefined || cls < best)) best = cls;
    }
    return best;
  }

  #grow(endBytes: number): void {
    const have = this.memory.buffer.byteLength / PAGE;
    const need = Math.ceil(endBytes / PAGE);
    // grow by at least 1/8 of the current size, so many small growths do not each copy the memory map
    const want = Math.min(MAX_PAGES, Math.max(need, have + Math.ceil(have / 8)));
    if (need > MAX_PAGES) {
      throw new Error(`[wasm] out of memory: ${endBytes} bytes needed, the wasm32 limit is 4 GiB`);
    }
    try {
      this.memory.grow(want - have);
    } catch {
      try {
        this.memory.grow(need - have);
      } catch (e) {
        throw new Error(`[wasm] out of memory: could not grow linear memory to ${need * PAGE} bytes (${(e as Error).message})`);
      }
    }
  }
}
