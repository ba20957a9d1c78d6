// Conformance of the fused adamw step on every backend: odd sizes, several steps (bias
// correction), weight decay, global-norm clipping on and off (gradNormSq null when off); and a
// whole optimizer step's launches given together (runGroup: on wasm one multi-tensor job,
// src/backend/wasm/multi_tensor.ts), which must equal one launch per parameter bit for bit.
import { afterAll, describe, expect, test } from "bun:test";
import type { Backend, DeviceBuffer, KernelLaunch } from "../../src/backend/backend.ts";
import { createComputeBackend } from "../../src/backend/registry.ts";
import { threadPool } from "../../src/backend/wasm/threads.ts";
import type { WasmBackend } from "../../src/backend/wasm/index.ts";
import { backendNames, getBackend } from "../backends.ts";
import { expectKernel, reference, seedOf, uniform } from "./harness.ts";

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

// ---- a step over many parameters as one group ----

/** Odd sizes, one big enough that the wasm pool splits it; ~306k elements in all. */
const GROUP_SIZES = [1, 3, 17, 4099, 65, 300_007, 33, 128, 1029];

/**
 * Runs one step over GROUP_SIZES parameters (two weight-decay groups with their own lr, shared
 * clip) on `backend`, through runGroup when `grouped` (where the backend has it), else one launch at
 * a time; returns every param, m, v after the step. `step` may differ per launch (a fallback case).
 */
async function groupStep(backend: Backend, grouped: boolean, { maxNorm = 1, steps = [3] }: { maxNorm?: number; steps?: number[] } = {}): Promise<Float32Array[]> {
  const held: DeviceBuffer[] = [];
  const up = (x: Float32Array) => {
    const d = backend.alloc(x.byteLength);
    backend.upload(d, x);
    held.push(d);
    return d;
  };
  try {
    const gns = up(Float32Array.of(40));
    const launches: KernelLaunch[] = GROUP_SIZES.map((n, i) => {
      const s = (t: string) => seedOf("adamw-group", n, i, t);
      const decay = i % 2 === 0;
      return {
        kernel: "adamw", inputs: [up(uniform(n, s("g"))), maxNorm > 0 ? gns : null],
        outputs: [up(uniform(n, s("p"))), up(uniform(n, s("m"), -0.1, 0.1)), up(uniform(n, s("v"), 0, 0.01))],
        params: { n, ...BASE, lr: decay ? 3e-3 : 6e-3, weightDecay: decay ? 0.1 : 0, step: steps[i % steps.length], maxNorm },
      };
    });
    if (grouped && backend.runGroup) backend.runGroup(launches);
    else for (const l of launches) backend.run(l.kernel, l.inputs, l.outputs, l.params as never);
    const n = (l: KernelLaunch) => (l.params as { n: number }).n;
    return await Promise.all(launches.flatMap((l) => l.outputs.map(async (o) => new Float32Array(await backend.download(o, n(l) * 4)))));
  } finally {
    for (const d of held) backend.free(d);
  }
}

/** The oracle's param, m, v for groupStep's launches. */
function groupReference(maxNorm: number, steps: number[]): Float64Array[] {
  return GROUP_SIZES.flatMap((n, i) => {
    const s = (t: string) => seedOf("adamw-group", n, i, t);
    const decay = i % 2 === 0;
    const init = [uniform(n, s("p")), uniform(n, s("m"), -0.1, 0.1), uniform(n, s("v"), 0, 0.01)];
    const p = { n, ...BASE, lr: decay ? 3e-3 : 6e-3, weightDecay: decay ? 0.1 : 0, step: steps[i % steps.length], maxNorm };
    return reference("adamw", [uniform(n, s("g")), maxNorm > 0 ? Float32Array.of(40) : null], init, p);
  });
}

describe("adamw: one optimizer step's launches as a group (wasm multi-tensor job)", () => {
  const made: Backend[] = [];
  afterAll(() => {
    for (const b of made) b.dispose();
  });

  for (const threads of [1, 2]) {
    test(`on ${threads} thread(s): bit for bit one launch per parameter, and the reference`, async () => {
      const backend = (await createComputeBackend("wasm", { threads, blas: "off" })) as WasmBackend;
      made.push(backend);
      const pool = threadPool(backend.unsafeRuntime);
      if (threads > 1) {
        pool.startWorkers();
        await pool.whenReady();
      }
      // count the main thread's calls of the list export (the instance's exports object is frozen: swap in a copy)
      const rt = backend.unsafeRuntime as { exports: Record<string, unknown> };
      const exports = rt.exports;
      let listCalls = 0;
      const list = exports.adamw_list_f32 as (...a: number[]) => void;
      rt.exports = { ...exports, adamw_list_f32: (...a: number[]) => (listCalls++, list(...a)) };
      for (const maxNorm of [0, 1]) {
        const one = await groupStep(backend, false, { maxNorm });
        const [shared, calls] = [pool.sharedChunks, listCalls];
        expect(calls).toBe(0);
        const grouped = await groupStep(backend, true, { maxNorm });
        // one thread: one list call for the whole step; two: one job split over the pool
        if (threads > 1) expect(pool.sharedChunks).toBeGreaterThan(shared);
        else expect([pool.sharedChunks, listCalls]).toEqual([shared, calls + 1]);
        listCalls = 0;
        expect(grouped).toEqual(one);
        const want = groupReference(maxNorm, [3]);
        grouped.forEach((got, i) => expect(got).toBeAllClose(want[i], { atol: 1e-6, rtol: 1e-5 }));
      }
    });
  }

  test("launches that do not share their scalars (step) still update every parameter right", async () => {
    const backend = await createComputeBackend("wasm", { threads: 2, blas: "off" });
    made.push(backend);
    const grouped = await groupStep(backend, true, { steps: [1, 2] });
    const want = groupReference(1, [1, 2]);
    grouped.forEach((got, i) => expect(got).toBeAllClose(want[i], { atol: 1e-6, rtol: 1e-5 }));
  });
});

describe.each(backendNames)("adamw group on %s", (name) => {
  test("runGroup (where the backend has it) of a step's launches matches reference", async () => {
    const backend = await getBackend(name);
    const want = groupReference(1, [3]);
    (await groupStep(backend, true)).forEach((got, i) => expect(got).toBeAllClose(want[i], { atol: 1e-6, rtol: 1e-5 }));
  });
});
