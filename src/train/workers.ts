// Data-loader worker threads (PyTorch's num_workers): dataset items are read, transformed and
// collated off the main thread in Bun/Deno Workers; the main thread only uploads the collated
// typed arrays. What crosses to a worker must be data, so a source is described by a SourceSpec:
// an array of examples or a TensorDataset's columns (copied once per worker), a JSONL or token
// file (each worker opens it), or a module export (`datasetFromModule`, `transformFromModule`:
// re-imported in the worker, as pickle moves a function by its module and name). Anything else
// (a Dataset holding closures, a collate function) is refused with a ConfigError.
//
// Order: the main thread plans every batch (the seeded shuffle, `skip` for resume) and hands batch
// b to worker (b - skip) % numWorkers; batches are yielded in b order, so the stream is the one
// numWorkers 0 gives. At most prefetchFactor batches per worker are in flight. A stream (JSONL)
// is read by every worker, each parsing only the lines of its own batches. Threads start per
// pass (an epoch) and end with it, or, with persistentWorkers, stay for the next pass.

import type { HostBatch, HostCollateOptions } from "./collate.ts";
import { STREAM_SPEC, type StreamSpec } from "./streams.ts";
import { ConfigError } from "./config.ts";
import { UserError } from "../util/errors.ts";

/** A function exported by a module, rebuilt in each worker: `await module[export](options)` gives the function. */
export interface ModuleRef {
  readonly module: string;
  readonly export: string;
  readonly options?: unknown;
}

export type SourceSpec =
  | { kind: "examples"; examples: unknown[] }
  | { kind: "tensor"; columns: Record<string, unknown> }
  | { kind: "module"; ref: ModuleRef }
  | StreamSpec;

/** The key under which a dataset carries its SourceSpec (TensorDataset, datasetFromModule). */
export const SOURCE_SPEC = Symbol.for("kiln.sourceSpec");

/** An error raised while loading a batch in a worker thread: names the dataset and the index. */
export class DataLoaderWorkerError extends UserError {
  override name = "DataLoaderWorkerError";
}

/**
 * A per-example transform that worker threads can run: `module` exports `export`, a (possibly
 * async) factory called once per thread with `options` that returns `(example) => example`
 * (e.g. loads a tokenizer, returns a function that tokenizes one row).
 */
export function transformFromModule(module: string | URL, exportName: string, options?: unknown): ModuleRef {
  return { module: String(module), export: exportName, options };
}

/** Loads a ModuleRef's function (in a worker or, with numWorkers 0, on the main thread). */
export async function loadModuleFunction<F>(ref: ModuleRef): Promise<F> {
  const mod = await import(ref.module);
  const factory = mod[ref.export];
  if (typeof factory !== "function") throw new ConfigError(`${ref.module} has no exported function "${ref.export}"`);
  const made = await factory(ref.options);
  if (made === undefined || made === null) throw new ConfigError(`${ref.module}: ${ref.export}(options) returned nothing`);
  return made as F;
}

/**
 * A Dataset built by a module export, `await module[export](options)`, on the main thread now and
 * again in each worker thread: the way to give workers a Dataset class of your own.
 */
export async function datasetFromModule<D extends { length: number; get(i: number): unknown }>(module: string | URL, exportName: string, options?: unknown): Promise<D> {
  const ref: ModuleRef = { module: String(module), export: exportName, options };
  const ds = await loadModuleFunction<D>(ref);
  if (typeof ds.get !== "function" || typeof ds.length !== "number") throw new ConfigError(`${ref.module}: ${exportName}(options) must return a Dataset (length and get(i))`);
  Object.defineProperty(ds, SOURCE_SPEC, { value: (): SourceSpec => ({ kind: "module", ref }), enumerable: false });
  return ds;
}

/** How a worker rebuilds `source`, or a ConfigError saying why it cannot. */
export function sourceSpecOf(source: unknown, numWorkers: number): SourceSpec {
  const refuse = (what: string) =>
    new ConfigError(`DataLoader numWorkers ${numWorkers}: ${what} cannot be moved to a worker thread (it holds functions or closures). Use numWorkers 0, or a source workers can rebuild: an array of plain examples, a TensorDataset, jsonlExamples(path), tokenFileWindows(path), or datasetFromModule(url, export)`);
  if (Array.isArray(source)) {
    const bad = source.findIndex((e) => holdsFunction(e));
    if (bad >= 0) throw refuse(`the array's example ${bad}`);
    return { kind: "examples", examples: source };
  }
  const tagged = (source as Record<symbol, unknown> | null)?.[SOURCE_SPEC] ?? (source as Record<symbol, unknown> | null)?.[STREAM_SPEC];
  if (typeof tagged === "function") return tagged.call(source) as SourceSpec;
  if (tagged && typeof tagged === "object") return tagged as SourceSpec;
  const name = (source as object | null)?.constructor?.name;
  throw refuse(typeof source === "function" ? `the generator function ${source.name || "(anonymous)"}` : `the dataset${name && name !== "Object" ? ` (${name})` : ""}`);
}

function holdsFunction(v: unknown, depth = 0): boolean {
  if (typeof v === "function") return true;
  if (!v || typeof v !== "object" || ArrayBuffer.isView(v) || depth > 3) return false;
  return Object.values(v).some((x) => holdsFunction(x, depth + 1));
}

/** A dataset in words, for errors. */
export function describeSource(spec: SourceSpec): string {
  switch (spec.kind) {
    case "examples": return "the array dataset";
    case "tensor": return "the TensorDataset";
    case "module": return `the dataset of ${spec.ref.module}#${spec.ref.export}`;
    case "jsonl": return `the JSONL file ${spec.path}`;
    case "tokens": return `the token file ${spec.path}`;
  }
}

/** What each worker is told once. */
export interface WorkerInit {
  source: SourceSpec;
  transform: ModuleRef | null;
  batchSize: number;
  dropLast: boolean;
  collate: HostCollateOptions;
}

/** One batch of run `run` to load: `indices` for indexable sources, the batch number alone for streams. */
export interface WorkerTask { run: number; batch: number; indices?: number[] }

export type WorkerReply = { run: number; batch: number } & ({ host: HostBatch } | { end: true } | { error: string; index?: number });

export interface WorkerPlan {
  /** the epoch's example order (indexable sources); absent for streams */
  order?: number[];
  skip: number;
  prefetchFactor: number;
}

const WORKER_URL = new URL("./data_worker.ts", import.meta.url).href;

/**
 * numWorkers threads over one source. `batches(plan)` is one pass (an epoch); a pool can serve
 * many passes (persistentWorkers), one at a time. Between passes the threads do not keep the
 * process alive (unref), so a pool nobody closed cannot hang the exit.
 */
export class WorkerPool {
  readonly #workers: Worker[] = [];
  readonly #init: WorkerInit;
  readonly #replies = new Map<number, WorkerReply>();
  #run = 0;
  #failure: Error | null = null;
  #wake: (() => void) | null = null;
  #busy = false;
  #closed = false;

  constructor(init: WorkerInit, readonly numWorkers: number) {
    this.#init = init;
    try {
      for (let id = 0; id < numWorkers; id++) {
        const w = new Worker(WORKER_URL, { type: "module" });
        this.#workers.push(w);
        w.onmessage = (ev: MessageEvent<WorkerReply>) => {
          if (ev.data.run !== this.#run) return; // a pass that was left early
          this.#replies.set(ev.data.batch, ev.data);
          this.#notify();
        };
        w.onerror = (ev: ErrorEvent) => {
          ev.preventDefault?.();
          this.#failure ??= new DataLoaderWorkerError(`DataLoader worker ${id} failed loading ${describeSource(init.source)}: ${ev.message}`);
          this.#notify();
        };
        try {
          w.postMessage(init);
        } catch (e) {
          throw new ConfigError(`DataLoader numWorkers ${numWorkers}: ${describeSource(init.source)} cannot be moved to a worker thread (${(e as Error).message}); use numWorkers 0`);
        }
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  get busy(): boolean {
    return this.#busy;
  }

  #notify(): void {
    this.#wake?.();
    this.#wake = null;
  }

  /** One pass: the planned batches in order (a stream: until it ends). */
  async *batches(plan: WorkerPlan): AsyncGenerator<HostBatch> {
    if (this.#closed) throw new Error("this DataLoader's worker pool is closed");
    if (this.#busy) throw new Error("a DataLoader worker pool serves one pass at a time");
    this.#busy = true;
    const run = ++this.#run;
    this.#replies.clear();
    for (const w of this.#workers) (w as Worker & { ref?(): void }).ref?.();
    const { order, skip, prefetchFactor } = plan;
    const n = this.numWorkers;
    const bs = this.#init.batchSize;
    const total = order ? (this.#init.dropLast ? Math.floor(order.length / bs) : Math.ceil(order.length / bs)) : Infinity;
    try {
      let sent = skip;
      const send = () => {
        if (sent >= total) return;
        const task: WorkerTask = { run, batch: sent, indices: order?.slice(sent * bs, (sent + 1) * bs) };
        this.#workers[(sent - skip) % n].postMessage(task);
        sent++;
      };
      for (let k = 0; k < n * prefetchFactor; k++) send();
      for (let b = skip; b < total; b++) {
        while (!this.#replies.has(b) && !this.#failure) await new Promise<void>((r) => (this.#wake = r));
        if (this.#failure) throw this.#failure;
        const reply = this.#replies.get(b)!;
        this.#replies.delete(b);
        if ("error" in reply) {
          const where = reply.index !== undefined ? ` index ${reply.index}` : ` batch ${b}`;
          throw new DataLoaderWorkerError(`DataLoader worker ${(b - skip) % n}: loading ${describeSource(this.#init.source)}${where} failed: ${reply.error}`);
        }
        if ("end" in reply) return;
        send();
        yield reply.host;
      }
    } finally {
      this.#busy = false;
      this.#replies.clear();
      if (this.#failure) this.close();
      for (const w of this.#workers) (w as Worker & { unref?(): void }).unref?.();
    }
  }

  /** Ends the threads. */
  close(): void {
    this.#closed = true;
    for (const w of this.#workers.splice(0)) w.terminate();
  }

  get closed(): boolean {
    return this.#closed;
  }
}
