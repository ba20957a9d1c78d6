// The WASM worker pool: Workers that instantiate the same WebAssembly.Module on the same shared
// Memory and run chunks of one kernel call beside the main thread. A call is split into chunks
// (argument lists of one export); the main thread and the workers claim chunks from a shared counter
// (so a worker that wakes late costs nothing: the main thread takes its chunks) and the main thread
// polls for at most MAIN_SPIN_MS, then sleeps in Atomics.wait until all are done; an idle worker
// polls for the next job for at most WORKER_SPIN_MS, then sleeps. Both polls are bounded, so an
// oversubscribed box loses at most that much per job.
// Not a scheduler for async work: run() is synchronous.

import { BLAS_MATMUL, blasMatmul } from "./blas_matmul.ts";
import type { KernelExport, WasmRuntime } from "./module.ts";

/** Bytes of per-thread kernel scratch (packing space); each participant owns one block. */
export const SCRATCH_BYTES = 1 << 20;
/**
 * How long the main thread polls for the workers' last chunks before it sleeps: a futex wake-up
 * costs more than a short poll on a VM (README "Performance" has the measurement). Bounded, so an
 * oversubscribed machine loses at most this per job.
 */
const MAIN_SPIN_MS = 0.2;
/** How long a worker polls for the next job before it sleeps (bounded likewise; README "Performance"). */
const WORKER_SPIN_MS = 0.3;
/** At most this many chunks per call (4 bits of the claim word). */
export const MAX_CHUNKS = 15;
const MAX_ARGS = 24;

// Int32 slots of the control block (a SharedArrayBuffer, not wasm memory).
const SEQ = 0; //      bumped to wake the workers (their futex word)
const CLAIM = 1; //    job epoch << 8 | chunk count << 4 | next unclaimed chunk
const DONE = 2; //     chunks finished in the current job (the main thread's futex word)
const EXIT = 6;
const FAILED = 7; //   a worker threw: the main thread rethrows
const READY = 8; //    workers ready to take chunks
const WORKER_CHUNKS = 9; // chunks run by workers so far (diagnostics, tests)
// then per chunk: the export's index in WebAssembly.Module.exports(module), its argument count, and
// the argument slot that receives the running thread's scratch pointer (-1: none)
const FN = 16;
const NARGS = FN + MAX_CHUNKS;
const SCRATCH_ARG = NARGS + MAX_CHUNKS;
const CTRL_INTS = 64;
const ARGS_BYTE_OFFSET = CTRL_INTS * 4; // then Float64 args: [chunk][MAX_ARGS]

/** One chunk of a pool job: an export, its arguments, and the slot for the thread's scratch pointer (if any). */
export interface PoolChunk {
  fn: string;
  args: readonly number[];
  scratchArg?: number;
}

/** What a worker is sent once (worker.ts). */
export interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  scratch: number;
  /** the native BLAS the main thread loaded (./blas.ts): the worker loads it too, or null */
  blas: string | null;
}

export class WasmThreadPool {
  readonly #rt: WasmRuntime;
  readonly #ctrl: Int32Array;
  readonly #args: Float64Array;
  readonly #control: SharedArrayBuffer;
  readonly #scratch: number[] = [];
  readonly #workers: Worker[] = [];
  readonly #exportIndex = new Map<string, number>();
  /** host functions that run as chunks beside the wasm exports (indices after the module's exports) */
  readonly #host = new Map<string, KernelExport>();
  #epoch = 0;
  #sharedChunks = 0;
  #started = false;
  #disposed = false;

  constructor(rt: WasmRuntime) {
    this.#rt = rt;
    this.#control = new SharedArrayBuffer(ARGS_BYTE_OFFSET + MAX_CHUNKS * MAX_ARGS * 8);
    this.#ctrl = new Int32Array(this.#control, 0, CTRL_INTS);
    this.#args = new Float64Array(this.#control, ARGS_BYTE_OFFSET, MAX_CHUNKS * MAX_ARGS);
    this.#scratch.push(allocScratch(rt));
    const names = WebAssembly.Module.exports(rt.module).map((e) => e.name);
    names.forEach((name, i) => this.#exportIndex.set(name, i));
    if (rt.blas) {
      this.#host.set(BLAS_MATMUL, blasMatmul(rt.blas, rt.memory, rt.exports.matmul_f32 as KernelExport, rt.exports.half_widen_rows as KernelExport));
      this.#exportIndex.set(BLAS_MATMUL, names.length);
    }
  }

  /** The main thread's scratch block (participant 0). */
  get scratch(): number {
    return this.#scratch[0];
  }

  /** Threads that take chunks now: the main thread plus the workers that are ready. */
  get participants(): number {
    return 1 + Atomics.load(this.#ctrl, READY);
  }

  /** Chunks the workers have run since the pool started (diagnostics). */
  get workerChunks(): number {
    return Atomics.load(this.#ctrl, WORKER_CHUNKS);
  }

  /** Chunks of jobs that were offered to the workers since the pool started (diagnostics). */
  get sharedChunks(): number {
    return this.#sharedChunks;
  }

  /** Starts rt.threads − 1 workers (once; they become ready asynchronously). */
  startWorkers(): void {
    if (this.#disposed || this.#started) return;
    this.#started = true;
    for (let i = 1; i < this.#rt.threads; i++) {
      let worker: Worker;
      try {
        worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
      } catch (e) {
        console.warn(`[wasm] could not start a worker thread, running kernels on fewer threads: ${(e as Error).message}`);
        break;
      }
      (worker as unknown as { unref?: () => void }).unref?.(); // never keeps the process alive
      worker.onerror = (e) => console.warn(`[wasm] worker thread failed: ${e.message}`);
      const scratch = allocScratch(this.#rt);
      this.#scratch.push(scratch);
      const init: WorkerInit = { module: this.#rt.module, memory: this.#rt.memory, control: this.#control, scratch, blas: this.#rt.blas?.path ?? null };
      worker.postMessage(init);
      this.#workers.push(worker);
    }
  }

  /** Resolves once every started worker is ready (benchmarks and tests; kernels never wait for it). */
  async whenReady(timeoutMs = 10000): Promise<void> {
    const t0 = performance.now();
    while (Atomics.load(this.#ctrl, READY) < this.#workers.length) {
      if (performance.now() - t0 > timeoutMs) throw new Error("[wasm] worker threads did not start");
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  /**
   * Runs export `fn` once per argument list in `chunks` (at most MAX_CHUNKS), spread over the
   * participants; returns when all are done. Argument slot `scratchArg` is replaced by the scratch
   * pointer of the thread that runs the chunk. Chunks must write disjoint memory.
   */
  run(fn: string, chunks: readonly (readonly number[])[], scratchArg = -1): void {
    this.runMixed(chunks.map((args) => ({ fn, args, scratchArg })));
  }

  /**
   * run() for chunks of different exports (Backend.runGroup: independent launches, one chunk each).
   * Chunks are claimed in order: put the longest first.
   */
  runMixed(chunks: readonly PoolChunk[]): void {
    const n = chunks.length;
    if (n === 1 || this.participants === 1 || this.#disposed) {
      for (const c of chunks) this.#kernel(c.fn)(...withScratch(c.args, c.scratchArg ?? -1, this.#scratch[0]));
      return;
    }
    if (n > MAX_CHUNKS) throw new Error(`[wasm] ${n} chunks, at most ${MAX_CHUNKS}`);
    const ctrl = this.#ctrl;
    this.#sharedChunks += n;
    for (let c = 0; c < n; c++) {
      const { fn, args, scratchArg = -1 } = chunks[c];
      if (args.length > MAX_ARGS) throw new Error(`[wasm] ${fn}: ${args.length} arguments, at most ${MAX_ARGS}`);
      this.#args.set(args, c * MAX_ARGS);
      const index = this.#exportIndex.get(fn);
      if (index === undefined) throw new Error(`[wasm] the module has no export ${fn}`);
      ctrl[FN + c] = index;
      ctrl[NARGS + c] = args.length;
      ctrl[SCRATCH_ARG + c] = scratchArg;
    }
    ctrl[FAILED] = 0;
    Atomics.store(ctrl, DONE, 0);
    this.#epoch = (this.#epoch + 1) & 0xffffff;
    Atomics.store(ctrl, CLAIM, (this.#epoch << 8) | (n << 4));
    Atomics.add(ctrl, SEQ, 1);
    Atomics.notify(ctrl, SEQ);
    // the main thread takes chunks too; then it sleeps until the workers' chunks are done
    for (let c = claim(ctrl); c >= 0; c = claim(ctrl)) {
      const nargs = ctrl[NARGS + c], scratchArg = ctrl[SCRATCH_ARG + c];
      const args = new Array<number>(nargs);
      for (let i = 0; i < nargs; i++) args[i] = this.#args[c * MAX_ARGS + i];
      if (scratchArg >= 0) args[scratchArg] = this.#scratch[0];
      this.#kernel(chunks[c].fn)(...args);
      Atomics.add(ctrl, DONE, 1);
    }
    // the workers' last chunks are usually about to finish: poll briefly before sleeping (a futex
    // wake-up costs tens of µs on a VM, hundreds of times per training step)
    if (Atomics.load(ctrl, DONE) < n) {
      const t0 = performance.now();
      while (Atomics.load(ctrl, DONE) < n && performance.now() - t0 < MAIN_SPIN_MS);
    }
    for (let d = Atomics.load(ctrl, DONE); d < n; d = Atomics.load(ctrl, DONE)) Atomics.wait(ctrl, DONE, d);
    if (Atomics.load(ctrl, FAILED)) throw new Error(`[wasm] ${chunks.map((c) => c.fn).join(", ")} failed in a worker thread`);
  }

  #kernel(fn: string): KernelExport {
    return this.#host.get(fn) ?? (this.#rt.exports[fn] as KernelExport);
  }

  /** Ends the workers (the pool runs everything on the main thread afterwards). */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    Atomics.store(this.#ctrl, EXIT, 1);
    Atomics.add(this.#ctrl, SEQ, 1);
    Atomics.notify(this.#ctrl, SEQ);
    for (const w of this.#workers.splice(0)) w.terminate();
    Atomics.store(this.#ctrl, READY, 0);
  }
}

/** Claims the next chunk of the current job: its index, or −1 when none is left. */
export function claim(ctrl: Int32Array): number {
  for (;;) {
    const v = Atomics.load(ctrl, CLAIM);
    const next = v & 15;
    if (next >= ((v >> 4) & 15)) return -1;
    if (Atomics.compareExchange(ctrl, CLAIM, v, v + 1) === v) return next;
  }
}

/**
 * The worker side of run(): wait for jobs, claim chunks, run them (worker.ts). `host` are the host
 * functions in the pool's order (the BLAS matmul when the pool has one).
 */
export function serveJobs(init: WorkerInit, exports: WebAssembly.Exports, host: readonly KernelExport[] = []): void {
  const ctrl = new Int32Array(init.control, 0, CTRL_INTS);
  const argsBuf = new Float64Array(init.control, ARGS_BYTE_OFFSET, MAX_CHUNKS * MAX_ARGS);
  const fns = [...WebAssembly.Module.exports(init.module).map((e) => exports[e.name] as KernelExport), ...host];
  let seq = Atomics.load(ctrl, SEQ);
  Atomics.add(ctrl, READY, 1);
  for (;;) {
    // the next job usually follows within a few hundred µs (the main thread runs a small kernel in
    // between): poll briefly before sleeping, as the main thread does for the last chunks
    const t0 = performance.now();
    while (Atomics.load(ctrl, SEQ) === seq && performance.now() - t0 < WORKER_SPIN_MS);
    Atomics.wait(ctrl, SEQ, seq);
    seq = Atomics.load(ctrl, SEQ);
    if (Atomics.load(ctrl, EXIT)) return;
    for (let c = claim(ctrl); c >= 0; c = claim(ctrl)) {
      const nargs = ctrl[NARGS + c];
      const scratchArg = ctrl[SCRATCH_ARG + c];
      const args = Array.from(argsBuf.subarray(c * MAX_ARGS, c * MAX_ARGS + nargs));
      if (scratchArg >= 0) args[scratchArg] = init.scratch;
      try {
        fns[ctrl[FN + c]](...args);
      } catch (e) {
        Atomics.store(ctrl, FAILED, 1);
        console.error("[wasm] worker kernel failed:", e);
      }
      Atomics.add(ctrl, WORKER_CHUNKS, 1);
      Atomics.add(ctrl, DONE, 1);
      Atomics.notify(ctrl, DONE);
    }
  }
}

const pools = new WeakMap<WasmRuntime, WasmThreadPool>();

/** The runtime's pool, created on first use (workers start only on startWorkers()). */
export function threadPool(rt: WasmRuntime): WasmThreadPool {
  let pool = pools.get(rt);
  if (!pool) {
    pool = new WasmThreadPool(rt);
    pools.set(rt, pool);
    const p = pool;
    rt.onDispose(() => p.dispose());
  }
  return pool;
}

function allocScratch(rt: WasmRuntime): number {
  const need = rt.exports.matmul_scratch_bytes();
  if (need > SCRATCH_BYTES) throw new Error(`[wasm] matmul_f32 needs ${need} bytes of scratch, each thread has ${SCRATCH_BYTES}`);
  return rt.allocator.alloc(SCRATCH_BYTES, false); // 64-byte aligned, kept out of memory stats
}

function withScratch(args: readonly number[], slot: number, scratch: number): number[] {
  const out = args.slice();
  if (slot >= 0) out[slot] = scratch;
  return out;
}
