// kiln's memory model. Device memory is never left to the garbage collector:
// - Every tensor made while a scope is open belongs to the innermost scope. When `scope(fn)` ends,
//   it disposes every tensor made inside it except those it returns (which move to the enclosing
//   scope) and those marked with `keep()` (parameters, optimizer state, anything long-lived).
// - Tensors made outside every scope are the caller's to `dispose()` (or `using t = ...`).
// - Reshaped views share one Storage with a reference count; the device buffer is freed when the
//   last tensor using it is disposed.

import type { Backend, DeviceBuffer } from "../backend/backend.ts";

/** A device buffer shared by a tensor and its views. */
export class Storage {
  refs = 1;
  constructor(readonly backend: Backend, readonly buffer: DeviceBuffer) {}

  retain(): this {
    this.refs++;
    return this;
  }

  release(): void {
    if (--this.refs === 0) this.backend.free(this.buffer);
  }
}

/** What scopes track: anything with a dispose(). */
export interface Disposable {
  dispose(): void;
  readonly disposed: boolean;
}

const scopes: Set<Disposable>[] = [];

/** Called by every new tensor: it joins the innermost open scope, if any. */
export function track(t: Disposable): void {
  scopes[scopes.length - 1]?.add(t);
}

/** Takes tensors out of every scope: they live until disposed by hand. Returns its argument. */
export function keep<T>(value: T): T {
  for (const t of collect(value)) for (const s of scopes) s.delete(t);
  return value;
}

/**
 * Runs fn and frees every tensor it made that is neither returned nor kept. The result may be a
 * tensor, an array or object holding tensors, or a Promise of those.
 */
export function scope<T>(fn: () => T): T {
  const mine = new Set<Disposable>();
  scopes.push(mine);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    endScope(mine, undefined);
    throw e;
  }
  if (result instanceof Promise) {
    throw new Error("[scope] fn returned a Promise: use asyncScope() for async work");
  }
  endScope(mine, result);
  return result;
}

/** scope() for async functions. Do not interleave two async scopes: scopes form one stack. */
export async function asyncScope<T>(fn: () => Promise<T>): Promise<T> {
  const mine = new Set<Disposable>();
  scopes.push(mine);
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    endScope(mine, undefined);
    throw e;
  }
  endScope(mine, result);
  return result;
}

function endScope(mine: Set<Disposable>, result: unknown): void {
  const top = scopes.pop();
  if (top !== mine) throw new Error("[scope] scopes were closed out of order (interleaved asyncScope calls?)");
  const survivors = new Set(collect(result));
  const parent = scopes[scopes.length - 1];
  for (const t of mine) {
    if (survivors.has(t)) parent?.add(t);
    else if (!t.disposed) t.dispose();
  }
}

/** Disposes every tensor found in value (a tensor, array or object of tensors). */
export function dispose(value: unknown): void {
  for (const t of collect(value)) if (!t.disposed) t.dispose();
}

function collect(value: unknown, out: Disposable[] = [], depth = 0): Disposable[] {
  if (value == null || typeof value !== "object" || depth > 4) return out;
  if (isDisposable(value)) {
    out.push(value);
  } else if (Array.isArray(value)) {
    for (const v of value) collect(v, out, depth + 1);
  } else if (value instanceof Map) {
    for (const v of value.values()) collect(v, out, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, out, depth + 1);
  }
  return out;
}

function isDisposable(v: object): v is Disposable {
  return typeof (v as Disposable).dispose === "function" && "disposed" in v;
}
