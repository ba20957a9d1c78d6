// Tensor: an n-d array on one backend, with an optional gradient. Methods delegate to the op front
// end (src/ops) and to autograd; this file holds the class, creation functions, reading back, and
// the default backend (process-wide, or per call with withBackend). Memory follows
// src/tensor/memory.ts (scopes, keep, dispose).

import { AsyncLocalStorage } from "node:async_hooks";
import type { Backend } from "../backend/backend.ts";
import type { Node } from "../autograd/tape.ts";
import { BYTES_PER_ELEMENT, bufferBytes, halfGradError, isHalf, type DType, type HalfDType } from "./dtype.ts";
import { bf16ArrayToF32, f16ArrayToF32, f32ArrayToBf16, f32ArrayToF16 } from "./half.ts";
import { Storage, track } from "./memory.ts";
import { checkShape, formatShape, sizeOf, type Shape } from "./shape.ts";
import { Rng } from "./random.ts";
import * as ops from "../ops/index.ts";
import { backward as runBackward } from "../autograd/tape.ts";
import { rememberHostIds } from "../ops/token_ids.ts";

let processBackend: Backend | null = null;
// A backend chosen for one call (withBackend); AsyncLocalStorage carries it across the call's awaits.
const callBackend = new AsyncLocalStorage<Backend>();

/** Makes `backend` the process-wide default for tensors created without an explicit backend. */
export function useBackend(backend: Backend): void {
  processBackend = backend;
}

/**
 * Runs fn (sync or async) with `backend` as the default for the tensors it creates without an
 * explicit backend, without touching the process-wide default: concurrent calls may each use
 * their own. Library calls given tensors use those tensors' backend whatever the default.
 * @example const y = await withBackend(gpu, async () => model.forward(ids))
 */
export function withBackend<T>(backend: Backend, fn: () => T): T {
  return callBackend.run(backend, fn);
}

/** The backend for new tensors: the running call's (withBackend), else the process-wide one. */
export function defaultBackend(): Backend {
  const backend = callBackend.getStore() ?? processBackend;
  if (!backend) {
    throw new Error("no backend: call `await kiln.init()` (or useBackend(await createComputeBackend(...))) first");
  }
  return backend;
}

export interface TensorOptions {
  dtype?: DType;
  backend?: Backend;
  requiresGrad?: boolean;
}

let nextId = 1;

/** The id the next tensor will get (ids count up): tensors made after this call have ids >= it. */
export function nextTensorId(): number {
  return nextId;
}

export class Tensor {
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly storage: Storage;
  requiresGrad = false;
  grad: Tensor | null = null;
  /** the autograd node that produced this tensor (null for leaves and under noGrad) */
  node: Node | null = null;
  /** a name for messages and state dicts (set by Module for parameters) */
  name?: string;
  #disposed = false;
  #released = false;

  /** Internal: wraps a storage. Use tensor(), zeros(), randn() ... to make tensors. */
  constructor(storage: Storage, shape: Shape, dtype: DType) {
    this.storage = storage;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    track(this);
  }

  get backend(): Backend {
    return this.storage.backend;
  }
  get size(): number {
    return sizeOf(this.shape);
  }
  get rank(): number {
    return this.shape.length;
  }
  get disposed(): boolean {
    return this.#disposed;
  }

  /** Frees this tensor's hold on device memory (and its gradient). Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (!this.#released) this.storage.release();
    this.node = null;
    if (this.grad && !this.grad.disposed) this.grad.dispose();
    this.grad = null;
  }
  [Symbol.dispose](): void {
    this.dispose();
  }

  /**
   * Frees the device memory of an activation that only its place in the graph is still needed for
   * (activationScope, src/ops/autocast.ts: the backward reads saved copies, not this tensor). It
   * stays a graph node; reading it is an error. Idempotent; dispose() later frees nothing more.
   */
  releaseStorage(): void {
    if (this.#disposed || this.#released) return;
    this.#released = true;
    this.storage.release();
  }

  /** Throws if disposed (or, except for backward's walk of the graph, released): every op calls this on its inputs. */
  check(op: string): this {
    if (this.#disposed) throw new Error(`[${op}] tensor ${this.describe()} was disposed`);
    if (this.#released && op !== "backward") throw new Error(`[${op}] tensor ${this.describe()} is an activation whose memory was released after the forward (under autocast only the backward's saved copies are kept)`);
    return this;
  }

  describe(): string {
    return `${this.name ?? `#${this.id}`} ${this.dtype}${formatShape(this.shape)}`;
  }

  toString(): string {
    return `Tensor(${this.describe()} on ${this.backend.name})`;
  }

  // ---- reading back ----
  /**
   * A copy of the elements, once queued work is done: Int32Array for i32, else Float32Array (f16
   * and bf16 widened exactly, as torch's .float() would).
   */
  async data(): Promise<Float32Array | Int32Array> {
    this.check("data");
    return hostArray(this.dtype, await this.backend.download(this.storage.buffer, this.size * BYTES_PER_ELEMENT[this.dtype]));
  }

  /** data() without waiting: only on backends where reading is free (wasm). */
  dataSync(): Float32Array | Int32Array {
    this.check("dataSync");
    const sync = this.backend.downloadSync;
    if (!sync) throw new Error(`[dataSync] backend ${this.backend.name} cannot read synchronously: use await t.data()`);
    return hostArray(this.dtype, sync.call(this.backend, this.storage.buffer, this.size * BYTES_PER_ELEMENT[this.dtype]));
  }

  /** The value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`[item] tensor ${this.describe()} has ${this.size} elements, not 1`);
    return (await this.data())[0];
  }

  /** Nested arrays, for printing and tests. */
  async toArray(): Promise<unknown> {
    const flat = Array.from(await this.data());
    const build = (dim: number, offset: number): unknown => {
      if (dim === this.shape.length) return flat[offset];
      const step = sizeOf(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim] }, (_, i) => build(dim + 1, offset + i * step));
    };
    return build(0, 0);
  }

  // ---- autograd ----
  /** Runs backpropagation from this (scalar) tensor, accumulating into .grad of tensors that require it. */
  backward(grad?: Tensor): void {
    runBackward(this, grad);
  }

  /** The same data, cut from the autograd graph. Shares storage. */
  detach(): Tensor {
    return new Tensor(this.check("detach").storage.retain(), this.shape, this.dtype);
  }

  /** Marks this tensor as a leaf that collects gradients (f32 only: 16-bit tensors are frozen storage). */
  requireGrad(flag = true): this {
    if (flag && isHalf(this.dtype)) throw halfGradError("requireGrad", this.describe());
    this.requiresGrad = flag;
    return this;
  }

  // ---- ops (see src/ops for the formulas) ----
  add(b: Tensor | number): Tensor { return ops.add(this, b); }
  sub(b: Tensor | number): Tensor { return ops.sub(this, b); }
  mul(b: Tensor | number): Tensor { return ops.mul(this, b); }
  div(b: Tensor | number): Tensor { return ops.div(this, b); }
  neg(): Tensor { return ops.neg(this); }
  pow(p: number): Tensor { return ops.pow(this, p); }
  exp(): Tensor { return ops.exp(this); }
  log(): Tensor { return ops.log(this); }
  sqrt(): Tensor { return ops.sqrt(this); }
  tanh(): Tensor { return ops.tanh(this); }
  sigmoid(): Tensor { return ops.sigmoid(this); }
  relu(): Tensor { return ops.relu(this); }
  gelu(): Tensor { return ops.gelu(this); }
  silu(): Tensor { return ops.silu(this); }
  sum(axis?: number | number[], keepdim = false): Tensor { return ops.sum(this, axis, keepdim); }
  mean(axis?: number | number[], keepdim = false): Tensor { return ops.mean(this, axis, keepdim); }
  max(axis: number, keepdim = false): Tensor { return ops.max(this, axis, keepdim); }
  reshape(...shape: number[] | [number[]]): Tensor { return ops.reshape(this, flatShape(shape)); }
  view(...shape: number[] | [number[]]): Tensor { return ops.reshape(this, flatShape(shape)); }
  transpose(dim0 = -2, dim1 = -1): Tensor { return ops.transpose(this, dim0, dim1); }
  permute(...dims: number[] | [number[]]): Tensor { return ops.permute(this, flatShape(dims)); }
  expand(...shape: number[] | [number[]]): Tensor { return ops.expand(this, flatShape(shape)); }
  narrow(axis: number, start: number, length: number): Tensor { return ops.narrow(this, axis, start, length); }
  matmul(b: Tensor): Tensor { return ops.matmul(this, b); }
  softmax(axis = -1): Tensor { return ops.softmax(this, axis); }
  /**
   * `to(dtype)`: the values in another float dtype ("f32", "f16", "bf16"; round to nearest even,
   * as torch's .to(dtype)); this tensor itself when it already has that dtype. Gradients flow back
   * to an f32 source. `to(backend)`: a copy on another backend (no gradient flows across).
   */
  to(dtype: DType): Tensor;
  to(backend: Backend): Promise<Tensor>;
  to(target: DType | Backend): Tensor | Promise<Tensor> {
    if (typeof target === "string") return ops.cast(this, target);
    return this.#toBackend(target);
  }
  async #toBackend(backend: Backend): Promise<Tensor> {
    if (backend === this.backend) return this;
    const t = empty(this.shape, this.dtype, backend);
    // the raw bytes travel (16-bit stays 16-bit, bit for bit)
    const bytes = await this.backend.download(this.storage.buffer, this.size * BYTES_PER_ELEMENT[this.dtype]);
    if (bytes.byteLength > 0) backend.upload(t.storage.buffer, new Uint8Array(bytes));
    if (this.dtype === "i32") rememberHostIds(t, new Int32Array(bytes));
    return t;
  }
}

/** Downloaded bytes as a host array: i32 as is, f32 as is, f16/bf16 widened to f32. */
function hostArray(dtype: DType, bytes: ArrayBuffer): Float32Array | Int32Array {
  if (dtype === "i32") return new Int32Array(bytes);
  if (dtype === "f16") return f16ArrayToF32(new Uint16Array(bytes));
  if (dtype === "bf16") return bf16ArrayToF32(new Uint16Array(bytes));
  return new Float32Array(bytes);
}

function flatShape(args: number[] | [number[]]): number[] {
  return Array.isArray(args[0]) ? (args[0] as number[]) : (args as number[]);
}

// ---- creation ----

/** A new uninitialised tensor (internal: ops fill it). */
export function empty(shape: Shape, dtype: DType = "f32", backend: Backend = defaultBackend()): Tensor {
  checkShape("empty", shape);
  return new Tensor(new Storage(backend, backend.alloc(bufferBytes(sizeOf(shape), dtype))), shape, dtype);
}

/** A tensor holding a copy of `data` (nested arrays or a typed array + shape). */
export function tensor(data: ArrayLike<number> | unknown[], shape?: Shape, options: TensorOptions = {}): Tensor {
  if (Array.isArray(data) && shape === undefined) {
    const inferred: number[] = [];
    let level: unknown = data;
    while (Array.isArray(level)) {
      inferred.push(level.length);
      level = level[0];
    }
    return fromArray((data as unknown[]).flat(Infinity) as number[], inferred, options);
  }
  return fromArray(data as ArrayLike<number>, shape ?? [(data as ArrayLike<number>).length], options);
}

/**
 * A tensor holding a copy of `data` in `options.dtype` (default: i32 for an Int32Array, else f32).
 * Values for f16/bf16 are rounded to nearest even on the host.
 */
export function fromArray(data: ArrayLike<number>, shape: Shape, options: TensorOptions = {}): Tensor {
  const dtype = options.dtype ?? (data instanceof Int32Array ? "i32" : "f32");
  if (data.length !== sizeOf(shape)) {
    throw new Error(`[tensor] ${data.length} values do not fill shape ${formatShape(shape)} (${sizeOf(shape)} elements)`);
  }
  if (options.requiresGrad && isHalf(dtype)) throw halfGradError("tensor", `a ${dtype}${formatShape(shape)} tensor`);
  const t = empty(shape, dtype, options.backend);
  const typed = hostValues(dtype, data);
  if (typed.length > 0) t.backend.upload(t.storage.buffer, typed);
  if (typed instanceof Int32Array) rememberHostIds(t, typed);
  if (options.requiresGrad) t.requiresGrad = true;
  return t;
}

/** The bytes a tensor of `dtype` stores for `data`. */
function hostValues(dtype: DType, data: ArrayLike<number>): Float32Array | Int32Array | Uint16Array {
  if (dtype === "i32") return Int32Array.from(data);
  const f32 = data instanceof Float32Array ? data : Float32Array.from(data);
  if (dtype === "f16") return f32ArrayToF16(f32);
  if (dtype === "bf16") return f32ArrayToBf16(f32);
  return f32; // upload() copies
}

let initSkipped = 0;
let matrixStorage: HalfDType | null = null;

/**
 * Internal, for loaders that overwrite every parameter they build (loadPretrained): runs the
 * synchronous `build` with randn(), rand() and full() (so zeros(), ones()) only allocating, their
 * values left undefined: no host array, no upload, no fill kernel, no draw from any Rng. Tensors
 * made from data (tensor(), fromArray()) are unaffected. With `matrices` ("f16" / "bf16", a 16-bit
 * base model), the f32 matrices it makes (Linear and embedding weights) are allocated in that
 * dtype instead, so the f32 model never exists; vectors (norms, biases) stay f32.
 */
export function withoutInit<T>(build: () => T, { matrices }: { matrices?: HalfDType } = {}): T {
  const outer = matrixStorage;
  initSkipped++;
  if (matrices) matrixStorage = matrices;
  try {
    return build();
  } finally {
    initSkipped--;
    matrixStorage = outer;
  }
}

/** Under withoutInit(): the allocated, unfilled tensor an init function returns instead. */
function uninitialized(shape: Shape, options: TensorOptions): Tensor | null {
  if (initSkipped === 0) return null;
  const dtype = options.dtype ?? "f32";
  const t = empty(shape, matrixStorage && dtype === "f32" && shape.length === 2 ? matrixStorage : dtype, options.backend);
  if (options.requiresGrad) t.requireGrad();
  return t;
}

export function full(shape: Shape, value: number, options: TensorOptions = {}): Tensor {
  const skipped = uninitialized(shape, options);
  if (skipped) return skipped;
  const dtype = options.dtype ?? "f32";
  if (dtype === "i32") return fromArray(new Int32Array(sizeOf(shape)).fill(value), shape, options);
  if (dtype !== "f32") return fromArray(new Float32Array(sizeOf(shape)).fill(value), shape, options); // 16-bit: rounded on the host
  const t = empty(shape, dtype, options.backend);
  if (t.size > 0) t.backend.run("fill", [], [t.storage.buffer], { n: t.size, value });
  if (options.requiresGrad) t.requiresGrad = true;
  return t;
}

export function zeros(shape: Shape, options: TensorOptions = {}): Tensor {
  return full(shape, 0, options);
}

export function ones(shape: Shape, options: TensorOptions = {}): Tensor {
  return full(shape, 1, options);
}

/** Normal(0, std²) values from a seeded host RNG (default: the global kiln RNG). */
export function randn(shape: Shape, options: TensorOptions & { std?: number; mean?: number; rng?: Rng } = {}): Tensor {
  const skipped = uninitialized(shape, options);
  if (skipped) return skipped;
  const rng = options.rng ?? Rng.global;
  const values = new Float32Array(sizeOf(shape));
  rng.fillNormal(values, options.mean ?? 0, options.std ?? 1);
  return fromArray(values, shape, options);
}

/** Uniform [low, high) values from a seeded host RNG. */
export function rand(shape: Shape, options: TensorOptions & { low?: number; high?: number; rng?: Rng } = {}): Tensor {
  const skipped = uninitialized(shape, options);
  if (skipped) return skipped;
  const rng = options.rng ?? Rng.global;
  const values = new Float32Array(sizeOf(shape));
  const low = options.low ?? 0;
  const span = (options.high ?? 1) - low;
  for (let i = 0; i < values.length; i++) values[i] = low + span * rng.next();
  return fromArray(values, shape, options);
}

/** [start, start+1, ..., end-1] as i32. */
export function arange(start: number, end?: number, options: TensorOptions = {}): Tensor {
  const [lo, hi] = end === undefined ? [0, start] : [start, end];
  const values = new Int32Array(Math.max(hi - lo, 0));
  for (let i = 0; i < values.length; i++) values[i] = lo + i;
  return fromArray(values, [values.length], { dtype: "i32", ...options });
}
