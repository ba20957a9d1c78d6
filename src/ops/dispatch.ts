// The one path from the op front end to a backend: pick the inputs' backend (mixing backends is
// an error), allocate outputs, launch a kernel of the kernel list. Shape checks happen before
// this, in the op functions; backends trust what arrives here.

import type { Backend, KernelLaunch } from "../backend/backend.ts";
import type { KernelName, KernelParams } from "../backend/kernels.ts";
import type { DType } from "../tensor/dtype.ts";
import { empty, Tensor } from "../tensor/tensor.ts";
import type { Shape } from "../tensor/shape.ts";
import { debugLevel } from "../util/env.ts";

/** The backend shared by all tensors in `inputs` (nulls skipped). */
export function backendOf(op: string, inputs: readonly (Tensor | null | undefined)[]): Backend {
  let backend: Backend | null = null;
  for (const t of inputs) {
    if (!t) continue;
    t.check(op);
    if (backend && t.backend !== backend) {
      throw new Error(`[${op}] tensors live on different backends (${backend.name} and ${t.backend.name}): move them with .to() first`);
    }
    backend = t.backend;
  }
  if (!backend) throw new Error(`[${op}] no tensor inputs`);
  return backend;
}

/** Allocates an output tensor on `backend`. */
export function alloc(backend: Backend, shape: Shape, dtype: DType = "f32"): Tensor {
  return empty(shape, dtype, backend);
}

/** A zero-filled output tensor on `backend`. */
export function allocZeros(backend: Backend, shape: Shape): Tensor {
  const t = empty(shape, "f32", backend);
  if (t.size > 0) launch("fill", [], [t], { n: t.size, value: 0 });
  return t;
}

/** Launches `kernel` with tensors in kernel-list order. */
export function launch<K extends KernelName>(
  kernel: K,
  inputs: readonly (Tensor | null)[],
  outputs: readonly Tensor[],
  params: KernelParams<K>,
): void {
  const backend = outputs[0].backend;
  const level = debugLevel();
  if (level >= 2) console.error(`[kiln] ${kernel} ${JSON.stringify(params)}`);
  const t0 = level >= 1 ? performance.now() : 0;
  backend.run(kernel, inputs.map((t) => t?.storage.buffer ?? null), outputs.map((t) => t.storage.buffer), params);
  if (level >= 1) recordTiming(kernel, performance.now() - t0, params as unknown as Record<string, number>);
}

/** A launch of `kernel` with tensors in kernel-list order, for launchGroup. */
export function launchOf<K extends KernelName>(
  kernel: K, inputs: readonly (Tensor | null)[], outputs: readonly Tensor[], params: KernelParams<K>,
): KernelLaunch {
  const launch = { kernel, inputs: inputs.map((t) => t?.storage.buffer ?? null), outputs: outputs.map((t) => t.storage.buffer), params };
  return launch as unknown as KernelLaunch;
}

/**
 * Launches kernels that are independent of each other (none reads or writes what another writes)
 * on `backend`: together through Backend.runGroup where it exists (wasm: one thread each), else
 * one after another.
 */
export function launchGroup(backend: Backend, launches: readonly KernelLaunch[]): void {
  const level = debugLevel();
  if (level >= 2) for (const l of launches) console.error(`[kiln] ${l.kernel} ${JSON.stringify(l.params)} (group)`);
  const t0 = level >= 1 ? performance.now() : 0;
  if (backend.runGroup) backend.runGroup(launches);
  else for (const l of launches) backend.run(l.kernel, l.inputs, l.outputs, l.params as never); // (params match kernel per launch)
  if (level >= 1) recordTiming(`group: ${launches.map((l) => l.kernel).join(" + ")}`, performance.now() - t0, {});
}

// KILN_DEBUG=1: time per kernel (on asynchronous backends, the time to encode), printed at exit,
// then matmul and sum per shape (where a kernel's time goes inside a training step)
interface Timing { ms: number; calls: number }
const timings = new Map<string, Timing>();
const shapeTimings = new Map<string, Timing>();
function recordTiming(kernel: string, ms: number, params: Record<string, number>): void {
  if (timings.size === 0) process.on("exit", printTimings);
  add(timings, kernel, ms);
  const shape = shapeKey(kernel, params);
  if (shape) add(shapeTimings, shape, ms);
}

function add(map: Map<string, Timing>, key: string, ms: number): void {
  const t = map.get(key) ?? { ms: 0, calls: 0 };
  t.ms += ms;
  t.calls++;
  map.set(key, t);
}

function shapeKey(kernel: string, p: Record<string, number>): string | null {
  if (kernel === "matmul") {
    const batch = p.batch > 1 ? `${p.batch}×` : "";
    return `matmul ${batch}${p.M}×${p.K}${p.transA ? "ᵀ" : ""}·${p.K}×${p.N}${p.transB ? "ᵀ" : ""}${p.hasBias ? "+b" : ""}`;
  }
  if (kernel === "sum") return `sum [${p.outer},${p.len},${p.inner}]`;
  return null;
}

function printTimings(): void {
  const total = [...timings.values()].reduce((s, t) => s + t.ms, 0);
  console.error(`[kiln] kernel time (KILN_DEBUG=1), total ${total.toFixed(1)} ms`);
  printRows(timings, total);
  if (shapeTimings.size > 0) {
    console.error("[kiln] matmul and sum by shape (A·B as M×K·K×N, ᵀ = read transposed)");
    printRows(shapeTimings, total);
  }
}

function printRows(map: Map<string, Timing>, total: number): void {
  for (const [name, t] of [...map].sort((a, b) => b[1].ms - a[1].ms)) {
    console.error(`  ${name.padEnd(32)} ${t.ms.toFixed(1).padStart(9)} ms ${((100 * t.ms) / total).toFixed(1).padStart(5)}%  ${String(t.calls).padStart(7)} calls  ${((1000 * t.ms) / t.calls).toFixed(1).padStart(8)} us/call`);
  }
}

/** A view of `x` with another shape (same storage, same element count). */
export function view(x: Tensor, shape: Shape): Tensor {
  return new Tensor(x.storage.retain(), shape, x.dtype);
}
