// Per-loader phase timings of the training loop: data, forward, backward, optimizer. Each step adds
// its milliseconds; window() gives the means since the last logged step as metric keys
// profile/train/dl_<name>/time_<phase>_ms; summary() is the whole run's per-phase table. On an
// asynchronous backend (WebGPU) the engine waits for the queue after each phase only on the steps
// it logs, so those timings are true and the others stay asynchronous.

export const PHASES = ["data", "forward", "backward", "optimizer"] as const;
export type Phase = (typeof PHASES)[number];

export class Profiler {
  readonly #window = new Map<string, Record<Phase, number> & { n: number }>();
  readonly #total = new Map<string, Record<Phase, number> & { n: number }>();
  #steps = 0;

  constructor(readonly enabled: boolean) {}

  add(loader: string, phase: Phase, ms: number): void {
    if (!this.enabled) return;
    for (const m of [this.#window, this.#total]) {
      let r = m.get(loader);
      if (!r) m.set(loader, (r = { data: 0, forward: 0, backward: 0, optimizer: 0, n: 0 }));
      r[phase] += ms;
      if (phase === "data") r.n++;
    }
  }

  /** Called once per optimizer step. */
  step(): void {
    this.#steps++;
  }

  /** Mean ms per batch of each phase per loader since the last call, as metric keys; resets the window. */
  window(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, r] of this.#window) {
      for (const p of PHASES) out[`profile/train/dl_${name}/time_${p}_ms`] = +(r[p] / Math.max(r.n, 1)).toFixed(3);
    }
    this.#window.clear();
    return out;
  }

  /** Totals per loader and phase (ms) and batch counts. */
  totals(): Map<string, Record<Phase, number> & { n: number }> {
    return this.#total;
  }

  /** A printable per-phase summary of the whole run. */
  summary(): string {
    const lines = ["profile (ms per batch, share of step time):"];
    for (const [name, r] of this.#total) {
      const all = PHASES.reduce((a, p) => a + r[p], 0) || 1;
      lines.push(`  ${name}: ${r.n} batches  ` + PHASES.map((p) => `${p} ${(r[p] / Math.max(r.n, 1)).toFixed(2)} (${((100 * r[p]) / all).toFixed(1)}%)`).join("  "));
    }
    return lines.join("\n");
  }
}
