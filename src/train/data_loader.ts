// Batches for the engine. A Dataset is anything indexable (length + get(i)); TensorDataset holds
// named columns of rows in host memory. A DataLoader turns a Dataset, an array, or a (async)
// iterable that streams from disk into batches: seeded shuffling per epoch (Rng(seed, epoch)),
// collation into tensors (rows of different lengths padded: inputs with padTokenId, targets with
// -100, the cross-entropy ignore index), and an exact position within an epoch for resume.

import { Rng } from "../tensor/random.ts";
import { fromArray, type Tensor } from "../tensor/tensor.ts";
import type { Backend } from "../backend/backend.ts";
import { ConfigError } from "./config.ts";
import { collateHost, type Example, type HostBatch, type HostCollateOptions } from "./collate.ts";
import { SOURCE_SPEC, WorkerPool, loadModuleFunction, sourceSpecOf, type ModuleRef, type SourceSpec, type WorkerInit } from "./workers.ts";

export interface Dataset<E = Example> {
  readonly length: number;
  get(i: number): E;
}

export type { Example } from "./collate.ts";

/** What iterating a DataLoader gives by default: one tensor per column. */
export type TensorBatch = Record<string, Tensor>;

type Column = { rows: (Float32Array | Int32Array)[] } | { scalars: Float32Array | Int32Array };

/**
 * Named columns of equal row counts: `new TensorDataset({ x: [[...], ...], y: [0, 2, ...] })`.
 * A column is an array of numbers (one per row), an array of rows (arrays or typed arrays), or a
 * flat typed array with `{ data, shape }` ([N, ...rowShape]). Integer data (Int32Array, or plain
 * numbers that are all integers) becomes i32, anything else f32.
 */
export class TensorDataset implements Dataset<Example> {
  readonly length: number;
  readonly #columns: [string, Column][];

  constructor(columns: Record<string, ArrayLike<number> | ArrayLike<ArrayLike<number>> | { data: Float32Array | Int32Array; shape: readonly number[] }>) {
    this.#columns = Object.entries(columns).map(([name, c]) => [name, toColumn(name, c)]);
    const lengths = this.#columns.map(([, c]) => ("rows" in c ? c.rows.length : c.scalars.length));
    if (lengths.length === 0) throw new ConfigError("TensorDataset needs at least one column");
    if (lengths.some((n) => n !== lengths[0])) {
      throw new ConfigError(`TensorDataset columns have different row counts: ${this.#columns.map(([n], i) => `${n} ${lengths[i]}`).join(", ")}`);
    }
    this.length = lengths[0];
  }

  /** Worker threads get the columns themselves (copied once per worker). */
  [SOURCE_SPEC](): SourceSpec {
    return { kind: "tensor", columns: Object.fromEntries(this.#columns) };
  }

  get(i: number): Example {
    const out: Example = {};
    for (const [name, c] of this.#columns) out[name] = "rows" in c ? c.rows[i] : c.scalars[i];
    return out;
  }
}

function toColumn(name: string, c: unknown): Column {
  if (c && typeof c === "object" && "data" in c && "shape" in c) {
    const { data, shape } = c as { data: Float32Array | Int32Array; shape: readonly number[] };
    const rowSize = shape.slice(1).reduce((a, b) => a * b, 1);
    if (shape.length === 1) return { scalars: data };
    return { rows: Array.from({ length: shape[0] }, (_, i) => data.subarray(i * rowSize, (i + 1) * rowSize)) };
  }
  const arr = c as ArrayLike<unknown>;
  if (arr.length === 0) return { scalars: new Float32Array(0) };
  if (ArrayBuffer.isView(arr)) return { scalars: arr as Float32Array | Int32Array };
  if (typeof arr[0] === "number") {
    const nums = Array.from(arr as ArrayLike<number>);
    return { scalars: nums.every(Number.isInteger) ? Int32Array.from(nums) : Float32Array.from(nums) };
  }
  const rows = Array.from(arr as ArrayLike<ArrayLike<number>>);
  const int = rows.every((r) => r instanceof Int32Array || (!(r instanceof Float32Array) && Array.from(r).every(Number.isInteger)));
  if (!rows.every((r) => r && typeof r === "object" && "length" in r)) throw new ConfigError(`TensorDataset column "${name}": rows must be arrays of numbers`);
  return { rows: rows.map((r) => (int ? Int32Array.from(r) : Float32Array.from(r))) };
}

export interface CollateOptions extends HostCollateOptions {
  backend?: Backend;
}

/** Stacks examples into one tensor per column; rows of different lengths are right-padded. */
export function collate(examples: readonly Example[], { backend, ...options }: CollateOptions = {}): TensorBatch {
  return toTensors(collateHost(examples, options), backend);
}

/** Uploads a host batch: one tensor per column. */
export function toTensors(host: HostBatch, backend?: Backend): TensorBatch {
  const out: TensorBatch = {};
  for (const [key, c] of Object.entries(host)) out[key] = fromArray(c.data, c.shape, { dtype: c.dtype, backend });
  return out;
}

export interface DataLoaderOptions<E, B> {
  batchSize: number;
  /** a new seeded order every epoch (indexable sources only) */
  shuffle?: boolean;
  seed?: number;
  /** drop a last batch smaller than batchSize */
  dropLast?: boolean;
  /** main thread only: a custom collation (numWorkers 0) */
  collate?: (examples: E[]) => B;
  padTokenId?: number;
  /** per-example transform before collation (tokenize a row, ...): a function, or transformFromModule(...) to run in workers */
  transform?: ((e: E) => Example | Promise<Example>) | ModuleRef;
  /** worker threads that load and collate batches (PyTorch num_workers); 0: on the main thread */
  numWorkers?: number;
  /** batches in flight per worker (PyTorch prefetch_factor, default 2) */
  prefetchFactor?: number;
  /** keep the worker threads between epochs (PyTorch persistent_workers); close() ends them */
  persistentWorkers?: boolean;
}

/** How one iteration runs; the engine passes performance.dataloaderNumWorkers here. */
export interface IterateOptions {
  /** used when the loader's own numWorkers is not set */
  numWorkers?: number;
}

type Source<E> = Dataset<E> | readonly E[] | Iterable<E> | AsyncIterable<E> | (() => Iterable<E> | AsyncIterable<E>);

/** Batches from a dataset, an array, or a stream; `iterate(epoch, skip)` is one epoch from batch `skip` on. */
export class DataLoader<E = Example, B = TensorBatch> {
  readonly batchSize: number;
  readonly #source: Source<E>;
  readonly #options: DataLoaderOptions<E, B>;
  #pool: WorkerPool | null = null;

  constructor(source: Source<E>, options: DataLoaderOptions<E, B>) {
    if (!Number.isInteger(options.batchSize) || options.batchSize < 1) throw new ConfigError(`DataLoader batchSize must be a positive integer (got ${options.batchSize})`);
    for (const key of ["numWorkers", "prefetchFactor"] as const) {
      const v = options[key];
      if (v !== undefined && (!Number.isInteger(v) || v < (key === "numWorkers" ? 0 : 1))) throw new ConfigError(`DataLoader ${key} must be ${key === "numWorkers" ? "a whole number >= 0" : "a positive integer"} (got ${v})`);
    }
    this.#source = source;
    this.#options = options;
    this.batchSize = options.batchSize;
    if (options.shuffle && !isIndexable(source)) throw new ConfigError("DataLoader shuffle needs an indexable source (a Dataset or an array); streams are read in order");
    if (options.numWorkers) this.#checkMovable(options.numWorkers);
  }

  /** Batches per epoch, when the source has a length. */
  get length(): number | undefined {
    if (!isIndexable(this.#source)) return undefined;
    const n = this.#source.length;
    return this.#options.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** What worker threads get, or a ConfigError naming what cannot move. */
  #checkMovable(numWorkers: number): SourceSpec {
    if (this.#options.collate) throw new ConfigError(`DataLoader numWorkers ${numWorkers}: a collate function cannot be moved to a worker thread; use numWorkers 0, or the default collation with transform: transformFromModule(url, export)`);
    if (typeof this.#options.transform === "function") throw new ConfigError(`DataLoader numWorkers ${numWorkers}: a transform function cannot be moved to a worker thread; use numWorkers 0, or transform: transformFromModule(url, export) (a module export workers import)`);
    return sourceSpecOf(this.#source, numWorkers);
  }

  async *iterate(epoch = 0, skip = 0, options: IterateOptions = {}): AsyncGenerator<B> {
    const { batchSize, dropLast } = this.#options;
    const numWorkers = this.#options.numWorkers ?? options.numWorkers ?? 0;
    const src = this.#source;
    const order = isIndexable(src) ? this.#order(src.length, epoch) : undefined;
    if (numWorkers > 0) {
      const source = this.#checkMovable(numWorkers);
      const init: WorkerInit = { source, transform: (this.#options.transform as ModuleRef | undefined) ?? null, batchSize, dropLast: !!dropLast, collate: { padTokenId: this.#options.padTokenId } };
      const keep = !!this.#options.persistentWorkers;
      let pool = keep ? this.#pool : null;
      if (pool && (pool.closed || pool.numWorkers !== numWorkers)) {
        pool.close();
        pool = null;
      }
      // a second pass while the kept pool is busy (two iterations at once) gets threads of its own
      const own = !pool || pool.busy;
      if (own) pool = new WorkerPool(init, numWorkers);
      if (keep && !this.#pool?.busy) this.#pool = pool;
      try {
        for await (const host of pool!.batches({ order, skip, prefetchFactor: this.#options.prefetchFactor ?? 2 })) yield toTensors(host) as unknown as B;
      } finally {
        if (pool !== this.#pool) pool!.close();
      }
      return;
    }
    const t = this.#options.transform;
    const transform = t === undefined ? null : typeof t === "function" ? t : await loadModuleFunction<(e: E) => Example | Promise<Example>>(t);
    const collateFn = this.#options.collate ?? ((ex: E[]) => collate(ex as unknown as Example[], { padTokenId: this.#options.padTokenId }) as unknown as B);
    const make = async (ex: E[]): Promise<B> => (transform ? collateFn((await Promise.all(ex.map((e) => transform(e)))) as unknown as E[]) : collateFn(ex));
    if (order && isIndexable(src)) {
      const get = (i: number) => ("get" in src && typeof src.get === "function" ? (src as Dataset<E>).get(i) : (src as readonly E[])[i]);
      for (let start = skip * batchSize; start < order.length; start += batchSize) {
        const idx = order.slice(start, start + batchSize);
        if (dropLast && idx.length < batchSize) return;
        yield await make(idx.map(get));
      }
      return;
    }
    const iterable = typeof src === "function" ? src() : src;
    let buf: E[] = [];
    let n = 0;
    for await (const e of iterable as AsyncIterable<E>) {
      buf.push(e);
      if (buf.length === batchSize) {
        if (n++ >= skip) yield await make(buf);
        buf = [];
      }
    }
    if (buf.length && !dropLast && n >= skip) yield await make(buf);
  }

  /** Ends the worker threads kept by persistentWorkers (a later epoch starts new ones). */
  close(): void {
    this.#pool?.close();
    this.#pool = null;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** The epoch's example order: seeded per (seed, epoch) when shuffling. */
  #order(n: number, epoch: number): number[] {
    const order = new Array<number>(n);
    for (let i = 0; i < n; i++) order[i] = i;
    if (this.#options.shuffle) {
      const rng = new Rng((((this.#options.seed ?? 0) >>> 0) * 1000003 + epoch * 7919 + 17) >>> 0);
      // a swap through a local, not [a, b] = [b, a]: that allocates an array per element (~1 GB of
      // garbage for the 9.6 M windows of a 2 GB token file)
      for (let i = n - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        const t = order[i];
        order[i] = order[j];
        order[j] = t;
      }
    }
    return order;
  }
}

function isIndexable<E>(s: Source<E>): s is Dataset<E> | readonly E[] {
  return Array.isArray(s) || (!!s && typeof s === "object" && "get" in s && "length" in s && typeof (s as Dataset<E>).get === "function");
}
