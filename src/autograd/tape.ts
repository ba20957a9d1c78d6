// Reverse-mode autodiff. Each op run with grad enabled on an input that requires grad records a
// Node on its output: the op name, its inputs and the context its rule needs. backward() walks the
// graph from the loss in reverse topological order, calls each op's VJP rule (./rules.ts) and
// accumulates gradients; leaves that require grad receive them in .grad (kept across scopes).
// Like PyTorch (retain_graph=False), the graph is released after backward().

import type { OpName, OpSpecs } from "../ops/spec.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { keep, scope } from "../tensor/memory.ts";
import { sameShape } from "../tensor/shape.ts";
import { vjp, vjpInto, type VjpIntoRule } from "./rules.ts";
import * as ops from "../ops/index.ts";

export interface Node<K extends OpName = OpName> {
  readonly op: K;
  readonly inputs: readonly (Tensor | null)[];
  readonly ctx: OpSpecs[K];
}

let gradEnabled = true;
/** Non-leaf tensors whose graph a backward() has released: backpropagating through them again is an error. */
const released = new WeakSet<Tensor>();

/** Runs fn without recording the graph (inference, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const before = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = before;
  }
}

/** Runs fn with the graph recorded again (inside noGrad): a checkpointed block's recompute in backward. */
export function enableGrad<T>(fn: () => T): T {
  const before = gradEnabled;
  gradEnabled = true;
  try {
    return fn();
  } finally {
    gradEnabled = before;
  }
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Whether record() would record an op on these inputs (an op can skip work only its backward needs). */
export function willRecord(inputs: readonly (Tensor | null)[]): boolean {
  return gradEnabled && inputs.some((t) => t?.requiresGrad);
}

/** Records `out = op(inputs)` when grad is on and some input requires grad. */
export function record<K extends OpName>(out: Tensor, op: K, inputs: readonly (Tensor | null)[], ctx: OpSpecs[K]): Tensor {
  if (willRecord(inputs)) {
    out.requiresGrad = true;
    out.node = { op, inputs, ctx } as Node;
  }
  return out;
}

/** Backpropagates from `root` (a scalar unless `grad` is given); leaves that require grad collect .grad. */
export function backward(root: Tensor, grad?: Tensor): void {
  const grads = propagate(root, grad);
  // leaves: accumulate into .grad
  for (const [t, g] of grads) {
    if (t.grad && !t.grad.disposed) {
      const old = t.grad;
      t.grad = noGrad(() => ops.add(old, g));
      old.dispose();
      g.dispose();
    } else {
      t.grad = g;
    }
    keep(t.grad);
  }
}

/**
 * The gradients of `root` with respect to `inputs` (torch.autograd.grad): returned, not added to
 * any .grad, and null for an input that root does not depend on. The graph stops at the inputs
 * (their own history is not walked) and is released as by backward(). Other leaves get nothing.
 */
export function grad(root: Tensor, inputs: readonly Tensor[], gradOutput?: Tensor): (Tensor | null)[] {
  const grads = propagate(root, gradOutput, new Set(inputs));
  const out = inputs.map((t) => grads.get(t) ?? null);
  const wanted = new Set(out);
  for (const g of grads.values()) if (!wanted.has(g)) g.dispose();
  return out;
}

/** Runs the VJP rules from root; returns the gradients of the leaves (or of `stops`, when given). */
function propagate(root: Tensor, grad?: Tensor, stops?: ReadonlySet<Tensor>): Map<Tensor, Tensor> {
  root.check("backward");
  if (!root.requiresGrad) {
    throw new Error("[backward] the tensor does not require grad: no input of the computation had requiresGrad set");
  }
  if (!grad && root.size !== 1) {
    throw new Error(`[backward] grad can be implied only for a one-element tensor, not ${root.describe()}`);
  }
  if (grad && !sameShape(grad.shape, root.shape)) {
    throw new Error(`[backward] grad ${grad.describe()} does not match the shape of ${root.describe()}`);
  }
  const order = topoOrder(root, stops);
  const grads = new Map<Tensor, Tensor>();
  const owned = new Set<Tensor>();
  const put = (t: Tensor, g: Tensor) => {
    if (owned.has(g)) g = g.detach();
    const prev = grads.get(t);
    if (prev) {
      const sum = noGrad(() => ops.add(prev, g));
      owned.delete(prev);
      prev.dispose();
      g.dispose();
      g = sum;
    }
    grads.set(t, g);
    owned.add(g);
  };
  put(root, grad ? grad.detach() : noGrad(() => ops.onesLike(root)));

  noGrad(() => {
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i];
      const node = stops?.has(t) ? null : t.node;
      const g = grads.get(t);
      if (!node || !g) continue;
      const rule = vjp[node.op];
      if (rule === "nondiff") throw new Error(`[backward] op ${node.op} has no gradient`);
      // a gradient for the (single) input is already held and ours alone: add into it in place
      const into = vjpInto[node.op] as VjpIntoRule<OpName> | undefined;
      const input = node.inputs[0];
      const acc = into && input?.requiresGrad ? grads.get(input) : undefined;
      if (into && acc && owned.has(acc) && acc.storage.refs === 1 && acc.dtype === "f32") {
        into(g, node, acc);
        grads.delete(t);
        owned.delete(g);
        g.dispose();
        continue;
      }
      // in a scope: temporaries the rule makes are freed even when backward runs outside one
      // needs[j]: whether input j takes a gradient (frozen parameters and constants do not), so a
      // rule can skip the work only they would need
      const needs = node.inputs.map((input) => !!input?.requiresGrad);
      const inputGrads = scope(() => (rule as (g: Tensor, node: Node, needs: boolean[]) => (Tensor | null)[])(g, node, needs));
      node.inputs.forEach((input, j) => {
        const gi = inputGrads[j];
        if (input && gi && input.requiresGrad) put(input, gi);
        else if (gi && gi !== g && !owned.has(gi)) gi.dispose();
      });
      grads.delete(t);
      owned.delete(g);
      g.dispose();
    }
  });

  const leaves = new Map<Tensor, Tensor>();
  for (const [t, g] of grads) {
    if (stops ? stops.has(t) : !t.node) leaves.set(t, g);
    else g.dispose();
  }
  for (const t of order) {
    if (stops?.has(t)) continue;
    if (t.node) released.add(t);
    t.node = null;
  }
  return leaves;
}

function topoOrder(root: Tensor, stops?: ReadonlySet<Tensor>): Tensor[] {
  checkNotReleased(root);
  const order: Tensor[] = [];
  const seen = new Set<Tensor>([root]);
  const stack: [Tensor, number][] = [[root, 0]];
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = (stops?.has(t) ? null : t.node?.inputs) ?? [];
    if (i < inputs.length) {
      top[1]++;
      const child = inputs[i];
      if (child && child.requiresGrad && !seen.has(child)) {
        child.check("backward");
        checkNotReleased(child);
        seen.add(child);
        stack.push([child, 0]);
      }
    } else {
      order.push(t);
      stack.pop();
    }
  }
  return order;
}

function checkNotReleased(t: Tensor): void {
  if (released.has(t)) {
    throw new Error(
      `[backward] the graph through ${t.describe()} was freed by an earlier backward() ` +
        "(as PyTorch without retain_graph): run the forward again",
    );
  }
}
