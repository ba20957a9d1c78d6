// Conformance of the fused adamw step on every backend: odd sizes, several steps (bias
// correction), weight decay, global-norm clipping on and off (gradNormSq null when off).
import { describe, test } from "bun:test";
import { backendNames, getBackend } from "../backends.ts";
import { expectKernel, seedOf, uniform } from "./harness.ts";

const SIZES = [1, 3, 7, 33, 65, 127, 4099];
const BASE = { lr: 3e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };

describe.each(backendNames)("adamw on %s", (name) => {
  test("adamw without clipping matches reference (gradNormSq null)", async () => {
    const backend = await getBackend(name);
    for (const n of SIZES) {
      for (const step of [1, 2, 50]) {
        const s = (t: string) => seedOf("adamw", n, step, t);
        const grad = uniform(n, s("g"));
        const init = [uniform(n, s("p")), uniform(n, s("m"), -0.1, 0.1), uniform(n, s("v"), 0, 0.01)];
        const p = { n, ...BASE, step, maxNorm: 0 };
        await expectKernel(backend, "adamw", [grad, null], init, p, { atol: 1e-6, rtol: 1e-5 });
      }
    }
  });

  test("adamw with clipping matches reference (clip below and above the norm)", async () => {
    const backend = await getBackend(name);
    for (const n of SIZES) {
      for (const maxNorm of [0.5, 1000]) {
        const s = (t: string) => seedOf("adamw-clip", n, maxNorm, t);
        const grad = uniform(n, s("g"));
        const init = [uniform(n, s("p")), new Float32Array(n), new Float32Array(n)];
        const p = { n, ...BASE, weightDecay: 0, step: 1, maxNorm };
        await expectKernel(backend, "adamw", [grad, Float32Array.of(12.25)], init, p, { atol: 1e-6, rtol: 1e-5 });
      }
    }
  });
});
