// Embedding lookup: rows of a weight table picked by integer ids. The gradient scatters rows back
// with embedding_backward (a "+=" kernel, so repeated ids accumulate).

import type { Tensor } from "../tensor/tensor.ts";
import { record } from "../autograd/tape.ts";
import { alloc, backendOf, launch } from "./dispatch.ts";

/** weight[ids]: ids (i32) of any shape, weight [V, C] -> [...ids.shape, C]. Ids outside [0, V) give zero rows. */
export function embedding(ids: Tensor, weight: Tensor): Tensor {
  const backend = backendOf("embedding", [ids, weight]);
  if (ids.dtype !== "i32") throw new Error(`[embedding] ids must be i32, got ${ids.describe()}`);
  if (weight.rank !== 2) throw new Error(`[embedding] weight must be [V, C], got ${weight.describe()}`);
  const [V, C] = weight.shape;
  const out = alloc(backend, [...ids.shape, C]);
  launch("embedding", [ids, weight], [out], { n: ids.size, V, C });
  return record(out, "embedding", [ids, weight], { ids, V });
}
