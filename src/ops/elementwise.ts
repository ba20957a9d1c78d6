// Elementwise ops: arithmetic with PyTorch broadcasting, scalar affine maps, activations, dropout.
// Kernels: add/sub/mul/div take a trailing-block broadcast natively (out[i] = a[i % na] op b[i % nb]);
// any other broadcast is first materialized with `copy` (stride-0 expand).

import { currentRng, type Rng } from "../tensor/random.ts";
import { trainingOverride } from "../tensor/mode.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { halfStorageError, isHalf } from "../tensor/dtype.ts";
import { broadcastShapes, sameShape, sizeOf, type Shape } from "../tensor/shape.ts";
import { record, willRecord } from "../autograd/tape.ts";
import { saveForBackward } from "./autocast.ts";
import { alloc, backendOf, launch } from "./dispatch.ts";
import { expandRaw } from "./movement.ts";
import { sum } from "./reduce.ts";

type Binary = "add" | "sub" | "mul" | "div";

/** a + b (b a tensor or a number), broadcasting as PyTorch does. */
export function add(a: Tensor, b: Tensor | number): Tensor {
  return typeof b === "number" ? affine(a, 1, b) : binary("add", a, b);
}
/** a − b */
export function sub(a: Tensor, b: Tensor | number): Tensor {
  return typeof b === "number" ? affine(a, 1, -b) : binary("sub", a, b);
}
/** a · b (elementwise) */
export function mul(a: Tensor, b: Tensor | number): Tensor {
  return typeof b === "number" ? affine(a, b, 0) : binary("mul", a, b);
}
/** a / b (elementwise) */
export function div(a: Tensor, b: Tensor | number): Tensor {
  return typeof b === "number" ? affine(a, 1 / b, 0) : binary("div", a, b);
}
/** −x */
export function neg(x: Tensor): Tensor {
  return affine(x, -1, 0);
}

/** x·alpha + beta */
export function affine(x: Tensor, alpha: number, beta: number): Tensor {
  const backend = backendOf("affine", [x]);
  checkFloat("affine", x);
  const out = alloc(backend, x.shape);
  launch("affine", [x], [out], { n: x.size, alpha, beta });
  return record(out, "affine", [x], { alpha });
}

/** x^p for a scalar exponent p */
export function pow(x: Tensor, p: number): Tensor {
  const out = unaryKernel("pow", x, { p });
  return record(out, "pow", [x], { x, p });
}

export function exp(x: Tensor): Tensor {
  const out = unaryKernel("exp", x);
  return record(out, "exp", [x], { out });
}
export function log(x: Tensor): Tensor {
  return record(unaryKernel("log", x), "log", [x], { x });
}
export function sqrt(x: Tensor): Tensor {
  const out = unaryKernel("sqrt", x);
  return record(out, "sqrt", [x], { out });
}
export function tanh(x: Tensor): Tensor {
  const out = unaryKernel("tanh", x);
  return record(out, "tanh", [x], { out });
}
export function sigmoid(x: Tensor): Tensor {
  const out = unaryKernel("sigmoid", x);
  return record(out, "sigmoid", [x], { out });
}
export function relu(x: Tensor): Tensor {
  return record(unaryKernel("relu", x), "relu", [x], { x });
}
/**
 * GPT-2's tanh-approximated GELU ("gelu_new" in Hugging Face). When the op is recorded for
 * autograd, one kernel (gelu_with_grad) also writes gelu'(x), and the backward is a multiply.
 */
export function gelu(x: Tensor): Tensor {
  if (!willRecord([x])) return unaryKernel("gelu", x);
  const backend = backendOf("gelu_with_grad", [x]);
  checkFloat("gelu", x);
  const out = alloc(backend, x.shape);
  const dgelu = alloc(backend, x.shape);
  launch("gelu_with_grad", [x], [out, dgelu], { n: x.size });
  const saved = saveForBackward(dgelu, [x]);
  if (saved !== dgelu) dgelu.dispose();
  return record(out, "gelu", [x], { dgelu: saved });
}
/** SiLU (swish): x·sigmoid(x). */
export function silu(x: Tensor): Tensor {
  return record(unaryKernel("silu", x), "silu", [x], { x: saveForBackward(x, [x]) });
}

/**
 * Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1−p).
 * Identity when p = 0, `training` is false, or the running call is in eval mode
 * (withTraining(false)). The mask comes from a seed drawn from `rng` (default: the call's withRng
 * stream, else Rng.global).
 */
export function dropout(x: Tensor, p: number, training = true, rng: Rng = currentRng()): Tensor {
  if (!(p >= 0 && p < 1)) throw new Error(`[dropout] p must be in [0, 1), got ${p}`);
  if (!training || p === 0 || trainingOverride() === false) return x;
  const seed = rng.nextU32();
  const out = unaryKernel("dropout", x, { p, seed });
  return record(out, "dropout", [x], { p, seed });
}

/** A tensor of ones shaped like x (used to seed backward). */
export function onesLike(x: Tensor): Tensor {
  const out = alloc(x.backend, x.shape);
  launch("fill", [], [out], { n: out.size, value: 1 });
  return out;
}

/** Sums g over the broadcast dimensions so it takes `shape` (the adjoint of broadcasting). */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  return sum(g, axes).reshape([...shape]);
}

// ---- helpers ----

function binary(op: Binary, a: Tensor, b: Tensor): Tensor {
  const backend = backendOf(op, [a, b]);
  checkFloat(op, a);
  checkFloat(op, b);
  const shape = broadcastShapes(op, a.shape, b.shape);
  const ea = isTrailingBlock(a.shape, shape) ? a : expandRaw(a, shape);
  const eb = isTrailingBlock(b.shape, shape) ? b : expandRaw(b, shape);
  const out = alloc(backend, shape);
  launch(op, [ea, eb], [out], { n: sizeOf(shape), na: ea.size, nb: eb.size });
  if (ea !== a) ea.dispose();
  if (eb !== b) eb.dispose();
  if (op === "add" || op === "sub") return record(out, op, [a, b], { aShape: a.shape, bShape: b.shape });
  return record(out, op, [a, b], op === "mul" ? { a: saveForBackward(a, [a, b]), b: saveForBackward(b, [a, b]) } : { a, b });
}

/** True when x (leading 1s dropped) equals the trailing dims of `shape`: the kernel's i % n broadcast. */
function isTrailingBlock(x: Shape, shape: Shape): boolean {
  let start = 0;
  while (start < x.length && x[start] === 1) start++;
  const core = x.slice(start);
  if (core.length > shape.length) return false;
  const offset = shape.length - core.length;
  return core.every((d, i) => d === shape[offset + i]);
}

type UnaryKernel = "pow" | "exp" | "log" | "sqrt" | "tanh" | "sigmoid" | "relu" | "gelu" | "silu" | "dropout";

function unaryKernel(kernel: UnaryKernel, x: Tensor, extra: Record<string, number> = {}): Tensor {
  const backend = backendOf(kernel, [x]);
  checkFloat(kernel, x);
  const out = alloc(backend, x.shape);
  launch(kernel, [x], [out], { n: x.size, ...extra } as never);
  return out;
}

/** Throws unless x is f32 (a 16-bit tensor gets the message that says what reads them). */
export function checkFloat(op: string, x: Tensor): void {
  if (isHalf(x.dtype)) throw halfStorageError(op, x.describe());
  if (x.dtype !== "f32") throw new Error(`[${op}] expects f32 tensors, got ${x.describe()}`);
}
