// Times every backend.run / runGroup of a wasm backend (synchronous there, so wall time is the
// kernel's), summed per kernel label (matmul per shape) within a step, and prints the medians over
// steps, so a busy machine's outliers do not pile up as in KILN_DEBUG=1 totals. Used by
// profile_step.ts and profile_lora.ts. Timings: never in tests.

import type { Backend, KernelLaunch } from "../../src/backend/backend.ts";

const label = (kernel: string, p: Record<string, number>) =>
  kernel === "matmul" ? `matmul ${p.batch! > 1 ? `${p.batch}x` : ""}${p.M}x${p.K}${p.transA ? "T" : ""}.${p.K}x${p.N}${p.transB ? "T" : ""}${p.hasBias ? "+b" : ""}${p.dtypeB ? " 16-bit B" : ""}`
    : "n" in p && kernel !== "adamw" ? `${kernel} n=${p.n}` : kernel;

/** Wraps the backend's launches; step(fn) times one step, report() prints the medians. */
export function kernelTimer(backend: Backend) {
  let current = new Map<string, number>();
  const add = (key: string, t0: number) => current.set(key, (current.get(key) ?? 0) + performance.now() - t0);
  const run = backend.run.bind(backend);
  backend.run = ((kernel: string, inputs: never, outputs: never, params: Record<string, number>) => {
    const t0 = performance.now();
    run(kernel as never, inputs, outputs, params as never);
    add(label(kernel, params), t0);
  }) as typeof backend.run;
  const runGroup = backend.runGroup?.bind(backend);
  if (runGroup) {
    backend.runGroup = (launches: readonly KernelLaunch[]) => {
      const t0 = performance.now();
      runGroup(launches);
      add(`group ${launches.map((l) => label(l.kernel, l.params as Record<string, number>)).join(" + ")}`, t0);
    };
  }
  const perStep: Map<string, number>[] = [], totals: number[] = [];
  return {
    /** runs one step; kept in the figures unless `warmUp` */
    step(fn: () => void, warmUp = false): void {
      current = new Map();
      const t0 = performance.now();
      fn();
      if (warmUp) return;
      perStep.push(current);
      totals.push(performance.now() - t0);
    },
    report(rowsShown = Infinity, digits = 3): void {
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      const keys = new Set(perStep.flatMap((m) => [...m.keys()]));
      const rows = [...keys].map((k) => ({ k, ms: median(perStep.map((m) => m.get(k) ?? 0)) })).sort((a, b) => b.ms - a.ms);
      const step = median(totals), inKernels = rows.reduce((s, r) => s + r.ms, 0);
      console.log(`${backend.device}: step median ${step.toFixed(2)} ms, kernels ${inKernels.toFixed(2)} ms (medians per step)`);
      for (const r of rows.slice(0, rowsShown)) console.log(`  ${r.ms.toFixed(digits).padStart(8)} ms ${((100 * r.ms) / step).toFixed(1).padStart(5)}%  ${r.k}`);
    },
  };
}
