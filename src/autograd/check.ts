// Finite-difference gradient checking (used by tests): compares autograd's gradient of a scalar
// function with central differences (f(x+h) − f(x−h)) / 2h, computed in float64 on the host from
// f32 evaluations.

import type { Tensor } from "../tensor/tensor.ts";
import { fromArray } from "../tensor/tensor.ts";
import { scope } from "../tensor/memory.ts";
import { noGrad } from "./tape.ts";

export interface GradCheckResult {
  /** max |analytic − numeric| / max(1, |numeric|) over all checked elements */
  maxError: number;
  analytic: Float64Array[];
  numeric: Float64Array[];
}

/**
 * Checks d f / d inputs. `f` maps the inputs to any tensor; it is reduced with fixed random
 * weights to a scalar so every output element matters. Needs a synchronous backend (wasm).
 */
export function checkGradients(f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], { eps = 1e-2, maxElements = 64 } = {}): GradCheckResult {
  const values = inputs.map((x) => Float64Array.from(x.dataSync()));
  let weights: Float32Array | null = null;
  const evaluate = (vals: Float64Array[], grad: boolean): { loss: number; grads: Float64Array[] } =>
    scope(() => {
      const xs = vals.map((v, i) => fromArray(Float32Array.from(v), inputs[i].shape, { backend: inputs[i].backend, dtype: inputs[i].dtype, requiresGrad: grad && inputs[i].dtype === "f32" }));
      const out = grad ? f(...xs) : noGrad(() => f(...xs));
      if (!weights) {
        weights = new Float32Array(out.size);
        for (let i = 0; i < weights.length; i++) weights[i] = Math.sin(i * 12.9898 + 0.5) * 0.5 + 0.75;
      }
      const w = fromArray(weights, out.shape, { backend: out.backend });
      const loss = out.mul(w).sum();
      if (grad) loss.backward();
      const grads = xs.map((x) => (x.grad ? Float64Array.from(x.grad.dataSync()) : new Float64Array(x.size)));
      return { loss: loss.dataSync()[0], grads };
    });
  const { grads: analytic } = evaluate(values, true);
  const numeric = values.map((v) => new Float64Array(v.length));
  let maxError = 0;
  values.forEach((v, i) => {
    if (inputs[i].dtype !== "f32") return;
    const step = Math.max(1, Math.floor(v.length / maxElements));
    for (let j = 0; j < v.length; j += step) {
      const orig = v[j];
      v[j] = orig + eps;
      const plus = evaluate(values, false).loss;
      v[j] = orig - eps;
      const minus = evaluate(values, false).loss;
      v[j] = orig;
      const num = (plus - minus) / (2 * eps);
      numeric[i][j] = num;
      maxError = Math.max(maxError, Math.abs(analytic[i][j] - num) / Math.max(1, Math.abs(num)));
    }
  });
  return { maxError, analytic, numeric };
}
