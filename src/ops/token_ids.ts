// Range checks for integer ids (embedding rows, cross-entropy targets) done on the host, where the ids
// almost always come from: a scan of an Int32Array, no device round trip. The kernels' own guard (an
// out-of-range id reads a zero row / adds no loss) stays as the memory-safety net for ids that only
// exist on a device. On backends whose memory the host can see (wasm) every i32 tensor is checked in
// place; elsewhere (WebGPU) the check uses the host copy kept for i32 tensors made from host data
// (fromArray, full), held as long as the tensor's storage is alive.
// Reference: PyTorch raises IndexError ("index out of range in self") for nn.Embedding and
// "Target N is out of bounds" for cross_entropy.

import type { Storage } from "../tensor/memory.ts";
import type { Tensor } from "../tensor/tensor.ts";

const hostCopies = new WeakMap<Storage, Int32Array>();

/** Keeps the host values of an i32 tensor just filled from `values` (called by fromArray and full). */
export function rememberHostIds(t: Tensor, values: Int32Array): void {
  if (t.dtype !== "i32" || t.backend.hostView) return; // host-visible memory is read in place instead
  hostCopies.set(t.storage, values);
}

/** The ids of `t` as the host sees them, or undefined when they exist only on a device. */
export function hostIds(t: Tensor): Int32Array | undefined {
  const view = t.backend.hostView?.(t.storage.buffer);
  if (view) return new Int32Array(view.buffer, view.byteOffset, t.size);
  return hostCopies.get(t.storage);
}

/**
 * Throws a RangeError naming the first id of `ids` outside [0, limit) (other than `allowed`), its
 * position and the limit. `what` names an id ("token id", "target"), `range` the limit ("a vocabulary of 7").
 */
export function checkIds(op: string, ids: Tensor, limit: number, what: string, range: string, allowed?: number): void {
  const values = hostIds(ids);
  if (!values) return;
  for (let i = 0; i < values.length; i++) {
    const id = values[i];
    if ((id >= 0 && id < limit) || id === allowed) continue;
    const also = allowed === undefined ? "" : ` or ${allowed} (ignoreIndex)`;
    throw new RangeError(
      `[${op}] ${what} ${id} at position ${positionOf(i, ids.shape)} is out of range for ${range} (valid: 0..${limit - 1}${also})`,
    );
  }
}

/** Flat index -> "[i, j, ...]" in a row-major shape. */
function positionOf(flat: number, shape: readonly number[]): string {
  const idx: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    idx.unshift(flat % shape[d]);
    flat = Math.floor(flat / shape[d]);
  }
  return `[${idx.join(", ")}]`;
}
