// Finite-difference gradient checking (used by tests): compares autograd's gradient of a scalar
// function with central differences (f(x+h) − f(x−h)) / 2h, computed in float64 on the host from
// f32 evaluations. One procedure, two drivers: checkGradients reads tensors synchronously (wasm),
// checkGradientsAsync awaits each read (any backend, WebGPU included). The procedure is a generator
// that yields the tensors it needs read, so both drivers run exactly the same steps.

import type { Tensor } from "../tensor/tensor.ts";
import { fromArray } from "../tensor/tensor.ts";
import { dispose, scope } from "../tensor/memory.ts";
import { noGrad } from "./tape.ts";

export interface GradCheckResult {
  /** max |analytic − numeric| / max(1, |numeric|) over all checked elements */
  maxError: number;
  analytic: Float64Array[];
  numeric: Float64Array[];
}

export interface GradCheckOptions {
  /** finite-difference step (default 1e-2) */
  eps?: number;
  /** at most this many elements of each input are perturbed, evenly spaced (default 64) */
  maxElements?: number;
  /**
   * The numeric gradients of an earlier check of the same f at the same inputs: the finite
   * differences are not recomputed, only the analytic gradient (e.g. after changing a VJP rule).
   */
  numeric?: Float64Array[];
}

/**
 * Checks d f / d inputs. `f` maps the inputs to any tensor; it is reduced with fixed random
 * weights to a scalar so every output element matters. Needs a synchronous backend (wasm):
 * elsewhere use checkGradientsAsync.
 */
export function checkGradients(f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], options: GradCheckOptions = {}): GradCheckResult {
  const steps = gradCheck(f, inputs, options);
  try {
    let next = steps.next([]);
    while (!next.done) next = steps.next(next.value.map((t) => t.dataSync()));
    return next.value;
  } finally {
    steps.return(undefined as never); // after a failed read: frees what the check had yielded
  }
}

/** checkGradients on any backend: every read back is awaited. */
export async function checkGradientsAsync(f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], options: GradCheckOptions = {}): Promise<GradCheckResult> {
  const steps = gradCheck(f, inputs, options);
  try {
    let next = steps.next([]);
    while (!next.done) next = steps.next(await Promise.all(next.value.map((t) => t.data())));
    return next.value;
  } finally {
    steps.return(undefined as never);
  }
}

/** Yields tensors to read; is resumed with their values. Frees every tensor it yields. */
function* gradCheck(f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], { eps = 1e-2, maxElements = 64, numeric: given }: GradCheckOptions): Generator<Tensor[], GradCheckResult, ArrayLike<number>[]> {
  const values: Float64Array[] = [];
  for (const x of inputs) values.push(Float64Array.from((yield [x])[0]));
  let weights: Float32Array | null = null;
  /** Builds f at `vals` under one scope; returns the weighted loss and (with grad) the inputs' gradients. */
  const build = (vals: Float64Array[], grad: boolean): Tensor[] =>
    scope(() => {
      const xs = vals.map((v, i) => fromArray(Float32Array.from(v), inputs[i].shape, { backend: inputs[i].backend, dtype: inputs[i].dtype, requiresGrad: grad && inputs[i].dtype === "f32" }));
      const out = grad ? f(...xs) : noGrad(() => f(...xs));
      if (!weights) {
        weights = new Float32Array(out.size);
        for (let i = 0; i < weights.length; i++) weights[i] = Math.sin(i * 12.9898 + 0.5) * 0.5 + 0.75;
      }
      const w = fromArray(weights, out.shape, { backend: out.backend });
      const loss = out.mul(w).sum();
      if (!grad) return [loss];
      loss.backward();
      // the gradients outlive the scope (returned), detached from the inputs that the scope frees
      const grads = xs.map((x) => {
        const g = x.grad ?? fromArray(new Float32Array(x.size), x.shape, { backend: x.backend });
        x.grad = null;
        return g;
      });
      return [loss, ...grads];
    });
  /** Reads what build made, then frees it, also when the reader gives up. */
  function* evaluate(vals: Float64Array[], grad: boolean): Generator<Tensor[], { loss: number; grads: Float64Array[] }, ArrayLike<number>[]> {
    const made = build(vals, grad);
    try {
      const read = yield made;
      return { loss: read[0][0], grads: read.slice(1).map((g) => Float64Array.from(g)) };
    } finally {
      dispose(made);
    }
  }

  const { grads: analytic } = yield* evaluate(values, true);
  const numeric = given ?? values.map((v) => new Float64Array(v.length));
  let maxError = 0;
  for (let i = 0; i < values.length; i++) {
    if (inputs[i].dtype !== "f32") continue;
    const v = values[i];
    const step = Math.max(1, Math.floor(v.length / maxElements));
    for (let j = 0; j < v.length; j += step) {
      if (!given) {
        const orig = v[j];
        v[j] = orig + eps;
        const plus = (yield* evaluate(values, false)).loss;
        v[j] = orig - eps;
        const minus = (yield* evaluate(values, false)).loss;
        v[j] = orig;
        numeric[i][j] = (plus - minus) / (2 * eps);
      }
      maxError = Math.max(maxError, Math.abs(analytic[i][j] - numeric[i][j]) / Math.max(1, Math.abs(numeric[i][j])));
    }
  }
  return { maxError, analytic, numeric };
}
