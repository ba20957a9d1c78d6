// Batches for the engine. A Dataset is anything indexable (length + get(i)); TensorDataset holds
// named columns of rows in host memory. A DataLoader turns a Dataset, an array, or a (async)
// iterable that streams from disk into batches: seeded shuffling per epoch (Rng(seed, epoch)),
// collation into tensors (rows of different lengths padded: inputs with padTokenId, targets with
// -100, the cross-entropy ignore index), and an exact position within an epoch for resume.

import { Rng } from "../tensor/random.ts";
import { fromArray, type Tensor } from "../tensor/tensor.ts";
import type { Backend } from "../backend/backend.ts";
import { ConfigError } from "./config.ts";

export interface Dataset<E = Example> {
  readonly length: number;
  get(i: number): E;
}

/** One example: named numbers or rows of numbers. */
export type Example = Record<string, number | ArrayLike<number>>;

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

export interface CollateOptions {
  padTokenId?: number;
  backend?: Backend;
  /** pad value of target columns (y, labels): -100, ignored by crossEntropy */
  targetPad?: number;
}

const TARGET_KEYS = new Set(["y", "labels", "targets"]);

/** Stacks examples into one tensor per column; rows of different lengths are right-padded. */
export function collate(examples: readonly Example[], { padTokenId, backend, targetPad = -100 }: CollateOptions = {}): TensorBatch {
  const out: TensorBatch = {};
  const B = examples.length;
  for (const key of Object.keys(examples[0])) {
    const values = examples.map((e) => e[key]);
    if (typeof values[0] === "number") {
      const nums = values as number[];
      const int = nums.every(Number.isInteger) && !(examples[0][key] as unknown instanceof Float32Array);
      out[key] = fromArray(int ? Int32Array.from(nums) : Float32Array.from(nums), [B], { dtype: int ? "i32" : "f32", backend });
      continue;
    }
    const rows = values as ArrayLike<number>[];
    const int = rows.every((r) => r instanceof Int32Array || (!(r instanceof Float32Array) && Array.from(r).every(Number.isInteger)));
    const L = Math.max(...rows.map((r) => r.length));
    const ragged = rows.some((r) => r.length !== L);
    let pad = 0;
    if (ragged) {
      if (TARGET_KEYS.has(key)) pad = targetPad;
      else if (padTokenId === undefined) {
        throw new ConfigError(`rows of "${key}" have different lengths (${Math.min(...rows.map((r) => r.length))}..${L}) and no pad_token_id is set: add padTokenId (pad_token_id) to the config or the TaskSpec`);
      } else pad = padTokenId;
    }
    const data = int ? new Int32Array(B * L).fill(pad) : new Float32Array(B * L).fill(pad);
    rows.forEach((r, i) => data.set(r, i * L));
    out[key] = fromArray(data, [B, L], { dtype: int ? "i32" : "f32", backend });
  }
  return out;
}

export interface DataLoaderOptions<E, B> {
  batchSize: number;
  /** a new seeded order every epoch (indexable sources only) */
  shuffle?: boolean;
  seed?: number;
  /** drop a last batch smaller than batchSize */
  dropLast?: boolean;
  collate?: (examples: E[]) => B;
  padTokenId?: number;
}

type Source<E> = Dataset<E> | readonly E[] | Iterable<E> | AsyncIterable<E> | (() => Iterable<E> | AsyncIterable<E>);

/** Batches from a dataset, an array, or a stream; `iterate(epoch, skip)` is one epoch from batch `skip` on. */
export class DataLoader<E = Example, B = TensorBatch> {
  readonly batchSize: number;
  readonly #source: Source<E>;
  readonly #options: DataLoaderOptions<E, B>;

  constructor(source: Source<E>, options: DataLoaderOptions<E, B>) {
    if (!Number.isInteger(options.batchSize) || options.batchSize < 1) throw new ConfigError(`DataLoader batchSize must be a positive integer (got ${options.batchSize})`);
    this.#source = source;
    this.#options = options;
    this.batchSize = options.batchSize;
    if (options.shuffle && !isIndexable(source)) throw new ConfigError("DataLoader shuffle needs an indexable source (a Dataset or an array); streams are read in order");
  }

  /** Batches per epoch, when the source has a length. */
  get length(): number | undefined {
    if (!isIndexable(this.#source)) return undefined;
    const n = this.#source.length;
    return this.#options.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  async *iterate(epoch = 0, skip = 0): AsyncGenerator<B> {
    const { batchSize, dropLast } = this.#options;
    const make = this.#options.collate ?? ((ex: E[]) => collate(ex as unknown as Example[], { padTokenId: this.#options.padTokenId }) as unknown as B);
    const src = this.#source;
    if (isIndexable(src)) {
      const order = Array.from({ length: src.length }, (_, i) => i);
      if (this.#options.shuffle) {
        const rng = new Rng((((this.#options.seed ?? 0) >>> 0) * 1000003 + epoch * 7919 + 17) >>> 0);
        for (let i = order.length - 1; i > 0; i--) {
          const j = rng.int(i + 1);
          [order[i], order[j]] = [order[j], order[i]];
        }
      }
      const get = (i: number) => ("get" in src && typeof src.get === "function" ? (src as Dataset<E>).get(i) : (src as readonly E[])[i]);
      for (let start = skip * batchSize; start < order.length; start += batchSize) {
        const idx = order.slice(start, start + batchSize);
        if (dropLast && idx.length < batchSize) return;
        yield make(idx.map(get));
      }
      return;
    }
    const iterable = typeof src === "function" ? src() : src;
    let buf: E[] = [];
    let n = 0;
    for await (const e of iterable as AsyncIterable<E>) {
      buf.push(e);
      if (buf.length === batchSize) {
        if (n++ >= skip) yield make(buf);
        buf = [];
      }
    }
    if (buf.length && !dropLast && n >= skip) yield make(buf);
  }
}

function isIndexable<E>(s: Source<E>): s is Dataset<E> | readonly E[] {
  return Array.isArray(s) || (!!s && typeof s === "object" && "get" in s && "length" in s && typeof (s as Dataset<E>).get === "function");
}
