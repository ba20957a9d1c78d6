// The one path from the op front end to a backend: pick the inputs' backend (mixing backends is
// an error), allocate outputs, launch a kernel of the kernel list. Shape checks happen before
// this, in the op functions; backends trust what arrives here.

import type { Backend } from "../backend/backend.ts";
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
  if (debugLevel() >= 2) console.error(`[kiln] ${kernel} ${JSON.stringify(params)}`);
  backend.run(kernel, inputs.map((t) => t?.storage.buffer ?? null), outputs.map((t) => t.storage.buffer), params);
}

/** A view of `x` with another shape (same storage, same element count). */
export function view(x: Tensor, shape: Shape): Tensor {
  return new Tensor(x.storage.retain(), shape, x.dtype);
}
