// Shared helpers of the op front-end tests (tests/ops/*.test.ts): the backend a describe block runs
// on, seeded random tensors, a float64 host model of n-d arrays (indexing, broadcasting) for the
// plain-JS references, the leak check, and the gradient assertion (autograd/check.ts finite
// differences on every backend, plus a mutation run proving the check would catch a wrong VJP
// rule). Not a test file.
import { beforeAll, expect } from "bun:test";
import * as k from "../../src/index.ts";
import { vjp } from "../../src/autograd/rules.ts";
import type { GradCheckResult } from "../../src/autograd/check.ts";
import type { OpName } from "../../src/ops/spec.ts";
import { sizeOf, stridesOf, type Shape } from "../../src/tensor/shape.ts";
import { backendNames, getBackend } from "../backends.ts";
import { ints, seedOf, uniform } from "../backend/harness.ts";
import type { CloseOptions } from "../setup.ts";

export { backendNames, ints, seedOf, sizeOf, uniform };

/** Makes backend `name` the default for the tests of the enclosing describe block; returns a getter. */
export function onBackend(name: string): () => k.Backend {
  let backend: k.Backend | null = null;
  beforeAll(async () => {
    backend = await getBackend(name);
    k.useBackend(backend);
  });
  return () => {
    if (!backend) throw new Error("onBackend: used before beforeAll ran");
    k.useBackend(backend);
    return backend;
  };
}

/** A seeded uniform f32 tensor and its values (as float64, exactly the f32 values). */
export function rand(shape: Shape, seed: string | number, lo = -1, hi = 1): { t: k.Tensor; v: Float64Array } {
  const f = uniform(sizeOf(shape), typeof seed === "number" ? seed : seedOf(seed), lo, hi);
  return { t: k.fromArray(f, shape), v: Float64Array.from(f) };
}

/** Reads a tensor back (any backend) and compares it with a float64 reference. */
export async function expectClose(t: k.Tensor, shape: Shape, want: ArrayLike<number>, tol: CloseOptions = { atol: 1e-5, rtol: 1e-5 }): Promise<void> {
  expect([...t.shape]).toEqual([...shape]);
  expect(await t.data()).toBeAllClose(want, tol);
}

/**
 * Runs fn inside a scope and expects the backend to hold exactly as many buffers afterwards as
 * before: every tensor the op (and its gradient rules) made was freed with the scope.
 */
export async function noLeaks(fn: () => Promise<unknown> | unknown): Promise<void> {
  const backend = k.defaultBackend();
  const before = backend.stats().buffers;
  await k.asyncScope(async () => {
    await fn();
  });
  expect(backend.stats().buffers).toBe(before);
}

export interface GradOptions {
  /** bound on checkGradients' maxError (|analytic − numeric| / max(1, |numeric|)) */
  tol: number;
  /** finite-difference step (default 1e-2) */
  eps?: number;
  /**
   * Rule keys of src/autograd/rules.ts to sabotage in a second run: each gradient they return is
   * scaled by 1.25, and that run must FAIL the tolerance. Proves the check sees the rule.
   */
  mutate?: OpName[];
}

/**
 * Expects autograd's gradient of f at `inputs` to match central differences, on the inputs' own
 * backend: the analytic gradient runs every backward kernel of that backend, and the finite
 * differences run its forward kernels (read back with await on WebGPU). Returns the result for
 * extra assertions.
 */
export async function expectGrad(f: (...xs: k.Tensor[]) => k.Tensor, inputs: k.Tensor[], { tol, eps = 1e-2, mutate = [] }: GradOptions): Promise<GradCheckResult> {
  const result = await k.checkGradientsAsync(f, inputs, { eps });
  expect(result.maxError).toBeLessThan(tol);
  // the gradient must not be trivially zero, or the comparison proves little
  const biggest = Math.max(...result.analytic.map((a) => Math.max(0, ...Array.from(a, Math.abs))));
  expect(biggest).toBeGreaterThan(10 * tol);
  for (const op of mutate) {
    // the same finite differences, a sabotaged analytic gradient
    const bad = await withSabotagedRule(op, () => k.checkGradientsAsync(f, inputs, { eps, numeric: result.numeric }));
    if (bad.maxError <= tol) throw new Error(`a 25% error in the ${op} rule went unnoticed (maxError ${bad.maxError} <= ${tol})`);
  }
  return result;
}

/** Runs fn with vjp[op] replaced by a rule whose every gradient is 1.25× the true one. */
async function withSabotagedRule<T>(op: OpName, fn: () => Promise<T>): Promise<T> {
  const table = vjp as Record<string, unknown>;
  const rule = table[op];
  if (typeof rule !== "function") throw new Error(`no VJP rule to sabotage for ${op}`);
  table[op] = (g: k.Tensor, node: unknown, needs?: readonly boolean[]) =>
    (rule as (g: k.Tensor, node: unknown, needs?: readonly boolean[]) => (k.Tensor | null)[])(g, node, needs).map((t) => (t ? k.mul(t, 1.25) : t));
  try {
    return await fn();
  } finally {
    table[op] = rule;
  }
}

// ---- float64 host n-d arrays ----

/** Every multi-index of `shape`, in row-major order. */
export function* indices(shape: Shape): Generator<number[]> {
  const n = sizeOf(shape);
  const idx = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    yield idx.slice();
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

/** The flat offset of multi-index `idx` in a contiguous `shape`. */
export function offsetOf(idx: readonly number[], shape: Shape): number {
  const strides = stridesOf(shape);
  let o = 0;
  for (let d = 0; d < shape.length; d++) o += idx[d] * strides[d];
  return o;
}

/** NumPy broadcasting of two shapes (independent of src/tensor/shape.ts). */
export function broadcastShape(a: Shape, b: Shape): number[] {
  const rank = Math.max(a.length, b.length);
  return Array.from({ length: rank }, (_, i) => {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`host: ${a} and ${b} do not broadcast`);
    return Math.max(da, db);
  });
}

/** Reads x (contiguous `shape`) at an index of the broadcast shape `outShape`. */
export function atBroadcast(x: ArrayLike<number>, shape: Shape, outIdx: readonly number[]): number {
  const lead = outIdx.length - shape.length;
  let o = 0;
  const strides = stridesOf(shape);
  for (let d = 0; d < shape.length; d++) o += (shape[d] === 1 ? 0 : outIdx[lead + d]) * strides[d];
  return x[o];
}

/** out = f(a, b) with broadcasting, in float64. */
export function hostBinary(a: ArrayLike<number>, aShape: Shape, b: ArrayLike<number>, bShape: Shape, f: (x: number, y: number) => number): { shape: number[]; out: Float64Array } {
  const shape = broadcastShape(aShape, bShape);
  const out = new Float64Array(sizeOf(shape));
  let i = 0;
  for (const idx of indices(shape)) out[i++] = f(atBroadcast(a, aShape, idx), atBroadcast(b, bShape, idx));
  return { shape, out };
}

/** out[idx] = x[map(idx)] for every index of outShape (permute, narrow, expand references). */
export function hostGather(x: ArrayLike<number>, xShape: Shape, outShape: Shape, map: (idx: number[]) => number[]): Float64Array {
  const out = new Float64Array(sizeOf(outShape));
  let i = 0;
  for (const idx of indices(outShape)) out[i++] = x[offsetOf(map(idx), xShape)];
  return out;
}

/** Applies f to every 1-D lane of x along `axis` (softmax, norms, ...), writing lanes of the same length. */
export function hostLanes(x: ArrayLike<number>, shape: Shape, axis: number, f: (lane: number[]) => number[]): Float64Array {
  const out = new Float64Array(sizeOf(shape));
  const strides = stridesOf(shape);
  const outer = shape.map((d, i) => (i === axis ? 1 : d));
  for (const idx of indices(outer)) {
    const base = offsetOf(idx, shape);
    const lane = Array.from({ length: shape[axis] }, (_, j) => x[base + j * strides[axis]]);
    f(lane).forEach((v, j) => (out[base + j * strides[axis]] = v));
  }
  return out;
}
