// Reductions: sum and mean over any set of axes (one `sum` kernel launch per axis, viewing the
// tensor as [outer, len, inner]), max over one axis (with argmax), and sumSquares for grad norms.

import type { Tensor } from "../tensor/tensor.ts";
import { normalizeAxis, sizeOf } from "../tensor/shape.ts";
import { record } from "../autograd/tape.ts";
import { alloc, backendOf, launch, view } from "./dispatch.ts";
import { checkFloat, mul } from "./elementwise.ts";

/** Σ over `axis` (all axes when undefined). keepdim keeps reduced dims as size 1. */
export function sum(x: Tensor, axis?: number | number[], keepdim = false): Tensor {
  const backend = backendOf("sum", [x]);
  checkFloat("sum", x);
  const axes = axesOf("sum", x, axis);
  let cur: Tensor = x;
  const shape = [...x.shape];
  // highest axis first, so lower axis numbers stay valid
  for (const a of [...axes].sort((p, q) => q - p)) {
    const outer = sizeOf(shape.slice(0, a));
    const len = shape[a];
    const inner = sizeOf(shape.slice(a + 1));
    shape[a] = 1;
    const out = alloc(backend, shape);
    launch("sum", [cur], [out], { outer, len, inner });
    if (cur !== x) cur.dispose();
    cur = out;
  }
  const outShape = keepdim ? shape : x.shape.filter((_, i) => !axes.includes(i));
  const result = cur === x ? view(x, outShape) : cur.rank === outShape.length ? cur : reshapeOwned(cur, outShape);
  return record(result, "sum", [x], { inShape: x.shape, axes });
}

/** Mean over `axis` (all axes when undefined). */
export function mean(x: Tensor, axis?: number | number[], keepdim = false): Tensor {
  const axes = axesOf("mean", x, axis);
  const count = axes.reduce((n, a) => n * x.shape[a], 1);
  const s = sum(x, axes, keepdim);
  const m = mul(s, 1 / count);
  if (!m.node) s.dispose(); // a recorded graph still needs s for the backward
  return m;
}

/** Max over one axis (no gradient). */
export function max(x: Tensor, axis: number, keepdim = false): Tensor {
  const { values, indices } = maxWithIndex(x, axis, keepdim);
  indices.dispose();
  return values;
}

/** Max and first argmax (as i32-valued f32) over one axis. */
export function maxWithIndex(x: Tensor, axis: number, keepdim = false): { values: Tensor; indices: Tensor } {
  const backend = backendOf("max", [x]);
  checkFloat("max", x);
  const a = normalizeAxis("max", axis, x.rank);
  const shape = x.shape.map((d, i) => (i === a ? 1 : d));
  const outShape = keepdim ? shape : x.shape.filter((_, i) => i !== a);
  const values = alloc(backend, outShape);
  const indices = alloc(backend, outShape);
  launch("max", [x], [values, indices], {
    outer: sizeOf(x.shape.slice(0, a)), len: x.shape[a], inner: sizeOf(x.shape.slice(a + 1)),
  });
  record(values, "max", [x], {});
  return { values, indices };
}

/** Σ x² into a one-element tensor; with `into`, adds to it instead (a global norm over many tensors). */
export function sumSquares(x: Tensor, into?: Tensor): Tensor {
  const backend = backendOf("sum_squares", [x]);
  const out = into ?? alloc(backend, [1]);
  launch("sum_squares", [x], [out], { n: x.size, accumulate: into ? 1 : 0 });
  return out;
}

function axesOf(op: string, x: Tensor, axis?: number | number[]): number[] {
  if (axis === undefined) return x.shape.map((_, i) => i);
  const list = (Array.isArray(axis) ? axis : [axis]).map((a) => normalizeAxis(op, a, x.rank));
  return [...new Set(list)];
}

function reshapeOwned(t: Tensor, shape: number[]): Tensor {
  const v = view(t, shape);
  t.dispose();
  return v;
}
