// Activation memory under autocast (torch.autocast's memory half). Inside withAutocast(true) on a
// backend with f16 arithmetic (WebGPU + shader-f16), the ops whose backward reads activations —
// linear and matmul (their inputs), gelu (its derivative), silu and mul (their inputs), attention
// (q, k, v and its output) — keep f16 copies for the backward instead of the f32 tensors; the
// rules widen them back when they run (exact: f16 → f32 loses nothing, and the f16 products
// round to f16 again). Weights (leaves that require grad) are never copied: f32 master weights.
// The f32 norms, softmax and loss (autocast's f32 list) keep their f32 saves.
//
// A copy alone saves nothing while the f32 activation lives on in the step's scope, so
// `activationScope(fn)` (run around each transformer block) releases the device memory of the
// block's intermediate activations once the block's forward is done, except what a backward
// rule saved: the graph stays whole (the tensors remain nodes), only their buffers go. A block
// with a custom op (a closure backward) frees nothing. Outside autocast, or without grad, both
// are no-ops: the f32 path is unchanged.

import { nextTensorId, type Tensor } from "../tensor/tensor.ts";
import { isGradEnabled, noGrad, willRecord } from "../autograd/tape.ts";
import { isAutocastF16Saves } from "../tensor/mode.ts";
import { cast } from "./cast.ts";

/** Whether ops save f16 copies in the running call: autocast on a backend with f16 arithmetic, grad recorded. */
export function autocastSaves(t: Tensor): boolean {
  return isAutocastF16Saves() && isGradEnabled() && !!t.backend.autocastF16;
}

/**
 * What an op on `inputs` keeps of `t` for its backward: an f16 copy of an f32 activation when the
 * op is recorded under autocastSaves, else t itself.
 */
export function saveForBackward(t: Tensor, inputs: readonly (Tensor | null)[]): Tensor {
  if (t.dtype !== "f32" || (t.requiresGrad && !t.node) || !willRecord(inputs) || !autocastSaves(t)) return t;
  // one copy per activation: the q/k/v (gate/up) projections of one normed input share it
  const had = copies.get(t);
  if (had && !had.disposed) return had;
  const copy = noGrad(() => cast(t, "f16"));
  copies.set(t, copy);
  return copy;
}

const copies = new WeakMap<Tensor, Tensor>();

/** A saved tensor as f32 for a rule's kernels (a temporary of the rule's scope when it was saved in f16). */
export function widen(t: Tensor): Tensor {
  return t.dtype === "f32" ? t : cast(t, "f32");
}

/**
 * Runs fn (a block's forward from `x`) and, under autocastSaves, releases the buffers of the
 * activations it made that no backward rule saved. Returns fn's result.
 */
export function activationScope(x: Tensor, fn: () => Tensor): Tensor {
  if (!autocastSaves(x)) return fn();
  const first = nextTensorId(); // tensors made by fn have ids from here on
  const out = fn();
  const made: Tensor[] = [];
  const saved = new Set<object>();
  const seen = new Set<Tensor>([out]);
  const stack = [out];
  while (stack.length) {
    const t = stack.pop()!;
    if (!t.node) continue;
    if (t.node.op === "custom") return out; // its backward is a closure: what it reads cannot be seen, so nothing is freed
    for (const v of Object.values(t.node.ctx)) if (v && typeof v === "object" && "storage" in v) saved.add((v as Tensor).storage);
    for (const i of t.node.inputs) {
      if (!i || seen.has(i) || i.id < first) continue;
      seen.add(i);
      made.push(i);
      stack.push(i);
    }
  }
  for (const t of made) if (t.node && !saved.has(t.storage)) t.releaseStorage();
  return out;
}
