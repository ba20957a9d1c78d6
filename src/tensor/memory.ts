// kiln's memory model. Device memory is never left to the garbage collector:
// - Every tensor made while a scope is open belongs to the innermost scope. When `scope(fn)` ends,
//   it disposes every tensor made inside it except those it returns (which move to the enclosing
//   scope) and those marked with `keep()` (parameters, optimizer state, anything long-lived).
// - Tensors made outside every scope are the caller's to `dispose()` (or `using t = ...`).
// - Scopes belong to the call that opened them, not to the process: concurrent async calls (a
//   server's requests, queued jobs) each have their own, and never free each other's tensors.
// - Reshaped views share one Storage with a reference count; the device buffer is freed when the
//   last tensor using it is disposed.

import { AsyncLocalStorage } from "node:async_hooks";
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

/** One open (or ended) scope: the tensors it owns and the scope it was opened in. */
class Scope {
  readonly tensors = new Set<Disposable>();
  open = true;
  constructor(readonly parent: Scope | undefined) {}
}

// The innermost scope of the running call. AsyncLocalStorage follows a call across its awaits, so
// two async calls that interleave (two requests, a request and a training step) each see their own
// scopes; a synchronous scope() is the same mechanism without the awaits.
const current = new AsyncLocalStorage<Scope>();

/** The innermost scope still open: a scope that has ended hands later arrivals to its parent. */
function openScope(): Scope | undefined {
  let s = current.getStore();
  while (s && !s.open) s = s.parent;
  return s;
}

/** Called by every new tensor: it joins the innermost open scope of the running call, if any. */
export function track(t: Disposable): void {
  openScope()?.tensors.add(t);
}

/** Takes tensors out of every scope of the running call: they live until disposed by hand. Returns its argument. */
export function keep<T>(value: T): T {
  const tensors = collect(value);
  for (let s = current.getStore(); s; s = s.parent) for (const t of tensors) s.tensors.delete(t);
  return value;
}

/**
 * Runs fn and frees every tensor it made that is neither returned nor kept. The result may be a
 * tensor, an array or object holding tensors.
 */
export function scope<T>(fn: () => T): T {
  const mine = new Scope(openScope());
  let result: T;
  try {
    result = current.run(mine, fn);
  } catch (e) {
    endScope(mine, undefined);
    throw e;
  }
  if (result instanceof Promise) {
    endScope(mine, undefined);
    throw new Error("[scope] fn returned a Promise: use asyncScope() for async work");
  }
  endScope(mine, result);
  return result;
}

/**
 * scope() for async functions: frees what fn made once its Promise settles. Async scopes may
 * interleave freely (concurrent requests): each call's tensors belong to its own scopes.
 */
export async function asyncScope<T>(fn: () => Promise<T>): Promise<T> {
  const mine = new Scope(openScope());
  let result: T;
  try {
    result = await current.run(mine, fn);
  } catch (e) {
    endScope(mine, undefined);
    throw e;
  }
  endScope(mine, result);
  return result;
}

function endScope(mine: Scope, result: unknown): void {
  mine.open = false;
  const survivors = new Set(collect(result));
  let parent = mine.parent;
  while (parent && !parent.open) parent = parent.parent;
  for (const t of mine.tensors) {
    if (survivors.has(t)) parent?.tensors.add(t);
    else if (!t.disposed) t.dispose();
  }
  mine.tensors.clear();
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
