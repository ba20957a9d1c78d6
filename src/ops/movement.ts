// Shape and layout ops: reshape/view (free: same storage), permute/transpose, expand (broadcast),
// narrow (slice), cat. All tensors are contiguous; permute/expand/narrow/cat run the strided
// `copy` kernel (rank <= 6) and their gradients its adjoint `copy_backward` or a sum.

import type { Tensor } from "../tensor/tensor.ts";
import { halfStorageError, isHalf } from "../tensor/dtype.ts";
import { formatShape, normalizeAxis, sizeOf, stridesOf, type Shape } from "../tensor/shape.ts";
import { record } from "../autograd/tape.ts";
import { alloc, backendOf, launch, view } from "./dispatch.ts";

const MAX_RANK = 6;

/** The same elements in another shape; one dim may be -1 (inferred). Shares storage. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  x.check("reshape");
  const resolved = [...shape];
  const infer = resolved.indexOf(-1);
  if (infer >= 0) {
    const known = sizeOf(resolved.filter((_, i) => i !== infer));
    if (known === 0 || x.size % known !== 0) {
      throw new Error(`[reshape] cannot infer -1 in ${formatShape(shape)} for ${x.describe()}`);
    }
    resolved[infer] = x.size / known;
  }
  if (sizeOf(resolved) !== x.size || resolved.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`[reshape] cannot view ${x.describe()} as ${formatShape(shape)}`);
  }
  return record(view(x, resolved), "reshape", [x], { inShape: x.shape });
}

/** Reorders dims: out.shape[i] = x.shape[dims[i]]. */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  const backend = backendOf("permute", [x]);
  const rank = x.rank;
  const norm = dims.map((d) => normalizeAxis("permute", d, rank));
  if (norm.length !== rank || new Set(norm).size !== rank) {
    throw new Error(`[permute] ${formatShape(dims)} is not a permutation of ${rank} dims`);
  }
  const strides = stridesOf(x.shape);
  const outShape = norm.map((d) => x.shape[d]);
  const out = alloc(backend, outShape, x.dtype);
  copyKernel(x, out, outShape, norm.map((d) => strides[d]), 0);
  return record(out, "permute", [x], { dims: norm });
}

/** Swaps two dims. */
export function transpose(x: Tensor, dim0 = -2, dim1 = -1): Tensor {
  const dims = x.shape.map((_, i) => i);
  const a = normalizeAxis("transpose", dim0, x.rank);
  const b = normalizeAxis("transpose", dim1, x.rank);
  [dims[a], dims[b]] = [dims[b], dims[a]];
  return permute(x, dims);
}

/** Broadcasts x to `shape` (PyTorch expand; materialized). -1 keeps a dim. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const target = shape.map((d, i) => (d === -1 ? x.shape[x.rank - shape.length + i] : d));
  const out = expandRaw(x, target);
  return record(out, "expand", [x], { inShape: x.shape });
}

/** expand without recording a gradient (used inside ops that handle broadcasting themselves). */
export function expandRaw(x: Tensor, shape: Shape): Tensor {
  const backend = backendOf("expand", [x]);
  const lead = shape.length - x.rank;
  if (lead < 0) throw new Error(`[expand] cannot expand ${x.describe()} to fewer dims ${formatShape(shape)}`);
  const inStrides = stridesOf(x.shape);
  const strides = shape.map((d, i) => {
    if (i < lead) return 0;
    const xd = x.shape[i - lead];
    if (xd === d) return inStrides[i - lead];
    if (xd === 1) return 0;
    throw new Error(`[expand] cannot expand ${x.describe()} to ${formatShape(shape)}`);
  });
  const out = alloc(backend, shape, x.dtype);
  copyKernel(x, out, shape, strides, 0);
  return out;
}

/** The slice [start, start+length) of `axis` (PyTorch narrow). */
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  const backend = backendOf("narrow", [x]);
  const a = normalizeAxis("narrow", axis, x.rank);
  if (!Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 0 || start + length > x.shape[a]) {
    throw new Error(`[narrow] range [${start}, ${start + length}) is outside dim ${a} of ${x.describe()}`);
  }
  const outShape = x.shape.map((d, i) => (i === a ? length : d));
  const strides = stridesOf(x.shape);
  const out = alloc(backend, outShape, x.dtype);
  copyKernel(x, out, outShape, strides, start * strides[a]);
  return record(out, "narrow", [x], { inShape: x.shape, axis: a, start });
}

/** Splits `axis` into pieces of the given sizes (views cut by narrow). */
export function split(x: Tensor, sizes: readonly number[], axis = -1): Tensor[] {
  let start = 0;
  return sizes.map((size) => {
    const piece = narrow(x, axis, start, size);
    start += size;
    return piece;
  });
}

/** Joins tensors along `axis`; all other dims must agree. */
export function cat(tensors: readonly Tensor[], axis = 0): Tensor {
  if (tensors.length === 0) throw new Error("[cat] needs at least one tensor");
  const backend = backendOf("cat", tensors);
  const first = tensors[0];
  if (isHalf(first.dtype)) throw halfStorageError("cat", first.describe());
  if (first.dtype !== "f32") {
    // the windows are scatter-added into a zeroed output: float adds would not keep i32 bit patterns
    throw new Error(`[cat] expects f32 tensors, got ${first.describe()}`);
  }
  const a = normalizeAxis("cat", axis, first.rank);
  for (const t of tensors) {
    if (t.rank !== first.rank || t.shape.some((d, i) => i !== a && d !== first.shape[i]) || t.dtype !== first.dtype) {
      throw new Error(`[cat] ${t.describe()} does not match ${first.describe()} outside dim ${a}`);
    }
  }
  const sizes = tensors.map((t) => t.shape[a]);
  const outShape = first.shape.map((d, i) => (i === a ? sizes.reduce((s, v) => s + v, 0) : d));
  const out = alloc(backend, outShape, first.dtype);
  launch("fill", [], [out], { n: out.size, value: 0 });
  const outStrides = stridesOf(outShape);
  let start = 0;
  for (const t of tensors) {
    // scatter t into its window of out: the adjoint of narrow
    copyKernel(t, out, t.shape, outStrides, start * outStrides[a], true);
    start += t.shape[a];
  }
  return record(out, "cat", tensors, { axis: a, sizes });
}

/** Launches copy (gather from `src` with strides) or copy_backward (scatter-add into `dst`). */
export function copyKernel(src: Tensor, dst: Tensor, dims: Shape, strides: readonly number[], offset: number, scatter = false): void {
  // copy moves 4-byte elements: a 16-bit tensor is reshaped (a view) but never permuted or sliced
  if (isHalf(src.dtype)) throw halfStorageError(scatter ? "cat" : "copy", src.describe());
  const { d, s } = packDims(dims, strides);
  const n = sizeOf(dims);
  if (n === 0) return;
  const params = {
    n, rank: MAX_RANK, offset,
    d0: d[0], d1: d[1], d2: d[2], d3: d[3], d4: d[4], d5: d[5],
    s0: s[0], s1: s[1], s2: s[2], s3: s[3], s4: s[4], s5: s[5],
  };
  if (scatter) launch("copy_backward", [src], [dst], params);
  else launch("copy", [src], [dst], params);
}

/** Merges size-1 dims away and pads to MAX_RANK (unused dims: size 1, stride 0). */
function packDims(dims: Shape, strides: readonly number[]): { d: number[]; s: number[] } {
  const d: number[] = [];
  const s: number[] = [];
  dims.forEach((size, i) => {
    if (size !== 1) {
      d.push(size);
      s.push(strides[i]);
    }
  });
  if (d.length > MAX_RANK) throw new Error(`[copy] tensors of more than ${MAX_RANK} non-unit dims are not supported`);
  while (d.length < MAX_RANK) {
    d.unshift(1);
    s.unshift(0);
  }
  return { d, s };
}
