// softmax over one axis (the `softmax` kernel works on the last axis; other axes are moved there
// and back). Its gradient uses the fused softmax_backward kernel.

import type { Tensor } from "../tensor/tensor.ts";
import { normalizeAxis } from "../tensor/shape.ts";
import { record } from "../autograd/tape.ts";
import { alloc, backendOf, launch } from "./dispatch.ts";
import { checkFloat } from "./elementwise.ts";
import { transpose } from "./movement.ts";

/** softmax(x)_i = exp(x_i − max x) / Σ_j exp(x_j − max x) along `axis`. */
export function softmax(x: Tensor, axis = -1): Tensor {
  const backend = backendOf("softmax", [x]);
  checkFloat("softmax", x);
  const a = normalizeAxis("softmax", axis, x.rank);
  if (a !== x.rank - 1) {
    const moved = transpose(x, a, -1);
    const s = softmax(moved, -1);
    const back = transpose(s, a, -1);
    if (!back.node) {
      // without a graph, nothing else holds the moved copies
      moved.dispose();
      s.dispose();
    }
    return back;
  }
  const cols = x.shape[x.rank - 1] ?? 1;
  const out = alloc(backend, x.shape);
  launch("softmax", [x], [out], { rows: x.size / Math.max(cols, 1), cols });
  return record(out, "softmax", [x], { out });
}
