// Cross-entropy from logits, fused with log-softmax (one kernel forward, one backward), with
// PyTorch's ignore_index and reductions.

import type { Tensor } from "../tensor/tensor.ts";
import { record } from "../autograd/tape.ts";
import { alloc, backendOf, launch } from "./dispatch.ts";
import { checkFloat, div } from "./elementwise.ts";
import { sum } from "./reduce.ts";
import { embeddingRows } from "./embedding.ts";
import { checkIds } from "./token_ids.ts";
import { full } from "../tensor/tensor.ts";
import { dispose } from "../tensor/memory.ts";

export interface CrossEntropyOptions {
  /** targets equal to this add no loss and no gradient (PyTorch default −100); any other target outside
   *  [0, V) throws (as PyTorch), except ids that exist only on a device, which the kernel skips */
  ignoreIndex?: number;
  /** "mean" over counted targets (PyTorch), "sum", or "none" (per-position losses) */
  reduction?: "mean" | "sum" | "none";
}

/** Cross-entropy of logits [..., V] against i32 targets [...], as torch.nn.functional.cross_entropy. */
export function crossEntropy(logits: Tensor, targets: Tensor, { ignoreIndex = -100, reduction = "mean" }: CrossEntropyOptions = {}): Tensor {
  const backend = backendOf("cross_entropy", [logits, targets]);
  checkFloat("cross_entropy", logits);
  if (targets.dtype !== "i32") throw new Error(`[cross_entropy] targets must be i32, got ${targets.describe()}`);
  const V = logits.shape[logits.rank - 1];
  const N = logits.size / V;
  if (targets.size !== N || logits.rank !== targets.rank + 1) {
    throw new Error(`[cross_entropy] targets ${targets.describe()} do not match logits ${logits.describe()}`);
  }
  checkIds("cross_entropy", targets, V, "target", `${V} classes`, ignoreIndex);
  const loss = alloc(backend, targets.shape);
  const lse = alloc(backend, [N]);
  launch("cross_entropy", [logits, targets], [loss, lse], { N, V, ignoreIndex });
  record(loss, "cross_entropy", [logits, targets], { logits, targets, lse, ignoreIndex });
  if (!loss.node) lse.dispose(); // only the backward reads lse
  return reduceLosses(loss, targets, V, ignoreIndex, reduction);
}

/**
 * Per-position losses [...] (0 at ignored targets) reduced as PyTorch: "none" as they are, "sum",
 * or "mean" over the targets that count (the count computed on the device).
 */
export function reduceLosses(loss: Tensor, targets: Tensor, V: number, ignoreIndex: number, reduction: "mean" | "sum" | "none"): Tensor {
  if (reduction === "none") return loss;
  const total = sum(loss);
  if (!total.node) loss.dispose(); // without a graph, nothing else holds the per-position losses
  return reduction === "sum" ? total : meanOverTargets(total, targets, V, ignoreIndex);
}

/** total / (the number of targets that are not ignoreIndex): PyTorch's "mean" of a summed loss. */
export function meanOverTargets(total: Tensor, targets: Tensor, V: number, ignoreIndex: number): Tensor {
  const backend = total.backend;
  // the count of targets that are not ignored, computed on the device: look each target up in a
  // [V, 1] table of ones (zero at ignoreIndex); out-of-range ids give 0
  const table = full([V, 1], 1, { backend });
  if (ignoreIndex >= 0 && ignoreIndex < V) backend.upload(table.storage.buffer, new Float32Array([0]), ignoreIndex * 4);
  const counted = embeddingRows(targets, table);
  const count = sum(counted);
  table.dispose();
  counted.dispose();
  const mean = div(total, count);
  if (!mean.node) dispose([total, count]);
  return mean;
}
