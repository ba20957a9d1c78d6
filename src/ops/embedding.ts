// Embedding lookup: rows of a weight table picked by integer ids. The gradient scatters rows back
// with embedding_backward (a "+=" kernel, so repeated ids accumulate). Ids outside [0, V) are an
// error wherever the host can see them (token_ids.ts); the kernels give a zero row for the rest.
// The weight may be 16-bit storage (a frozen f16/bf16 table), widened into the f32 rows.

import type { Backend } from "../backend/backend.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { record } from "../autograd/tape.ts";
import { alloc, backendOf, launch } from "./dispatch.ts";
import { checkIds } from "./token_ids.ts";
import { checkFloat } from "./elementwise.ts";
import { dtypeCode } from "./matmul.ts";
import { halfGradError, isHalf } from "../tensor/dtype.ts";

/**
 * weight[ids]: ids (i32) of any shape, weight [V, C] -> [...ids.shape, C]. An id outside [0, V) throws a
 * RangeError naming the id, its position and V (ids that exist only on a device give a zero row instead).
 */
export function embedding(ids: Tensor, weight: Tensor): Tensor {
  checkArgs(ids, weight);
  checkIds("embedding", ids, weight.shape[0], "token id", `a vocabulary of ${weight.shape[0]}`);
  return embeddingRows(ids, weight);
}

/** embedding() without the range check: ids outside [0, V) give zero rows (loss.ts counts targets so). */
export function embeddingRows(ids: Tensor, weight: Tensor): Tensor {
  const backend = checkArgs(ids, weight);
  const [V, C] = weight.shape;
  const out = alloc(backend, [...ids.shape, C]);
  launch("embedding", [ids, weight], [out], { n: ids.size, V, C, dtype: dtypeCode(weight) });
  return record(out, "embedding", [ids, weight], { ids, V });
}

function checkArgs(ids: Tensor, weight: Tensor): Backend {
  const backend = backendOf("embedding", [ids, weight]);
  if (ids.dtype !== "i32") throw new Error(`[embedding] ids must be i32, got ${ids.describe()}`);
  if (weight.rank !== 2) throw new Error(`[embedding] weight must be [V, C], got ${weight.describe()}`);
  if (!isHalf(weight.dtype)) checkFloat("embedding", weight);
  else if (weight.requiresGrad) throw halfGradError("embedding", weight.describe());
  return backend;
}
