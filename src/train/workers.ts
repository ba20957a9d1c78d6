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
// is read by every worker, each parsing only the lines of its own batches.

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

/** One batch to load: `indices` for indexable sources, the batch number alone for streams. */
export interface WorkerTask { batch: number; indices?: number[] }

export type WorkerReply =
  | { batch: number; host: HostBatch }
  | { batch: number; end: true }
  | { batch: number; error: string; index?: number };

export interface WorkerPlan {
  /** the epoch's example order (indexable sources); absent for streams */
  order?: number[];
  skip: number;
  numWorkers: number;
  prefetchFactor: number;
}

const WORKER_URL = new URL("./data_worker.ts", import.meta.url).href;

/** The epoch's batches, loaded by plan.numWorkers worker threads, in order; the threads end with the generator. */
export async function* workerBatches(init: WorkerInit, plan: WorkerPlan): AsyncGenerator<HostBatch> {
  const { order, skip, numWorkers, prefetchFactor } = plan;
  const bs = init.batchSize;
  const total = order ? (init.dropLast ? Math.floor(order.length / bs) : Math.ceil(order.length / bs)) : Infinity;
  const replies = new Map<number, WorkerReply>();
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  const notify = () => {
    wake?.();
    wake = null;
  };
  const workers: Worker[] = [];
  try {
    for (let id = 0; id < numWorkers; id++) {
      const w = new Worker(WORKER_URL, { type: "module" });
      workers.push(w);
      w.onmessage = (ev: MessageEvent<WorkerReply>) => {
        replies.set(ev.data.batch, ev.data);
        notify();
      };
      w.onerror = (ev: ErrorEvent) => {
        ev.preventDefault?.();
        failure ??= new DataLoaderWorkerError(`DataLoader worker ${id} failed loading ${describeSource(init.source)}: ${ev.message}`);
        notify();
      };
      try {
        w.postMessage(init);
      } catch (e) {
        throw new ConfigError(`DataLoader numWorkers ${numWorkers}: ${describeSource(init.source)} cannot be moved to a worker thread (${(e as Error).message}); use numWorkers 0`);
      }
    }
    let sent = skip;
    const send = () => {
      if (sent >= total) return;
      const task: WorkerTask = { batch: sent, indices: order?.slice(sent * bs, (sent + 1) * bs) };
      workers[(sent - skip) % numWorkers].postMessage(task);
      sent++;
    };
    for (let k = 0; k < numWorkers * prefetchFactor; k++) send();
    for (let b = skip; b < total; b++) {
      while (!replies.has(b) && !failure) await new Promise<void>((r) => (wake = r));
      if (failure) throw failure;
      const reply = replies.get(b)!;
      replies.delete(b);
      if ("error" in reply) {
        const where = reply.index !== undefined ? ` index ${reply.index}` : ` batch ${b}`;
        throw new DataLoaderWorkerError(`DataLoader worker ${(b - skip) % numWorkers}: loading ${describeSource(init.source)}${where} failed: ${reply.error}`);
      }
      if ("end" in reply) return;
      send();
      yield reply.host;
    }
  } finally {
    for (const w of workers) w.terminate();
  }
}
