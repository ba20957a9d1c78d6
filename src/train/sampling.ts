// Several named train (or val) loaders in one epoch: which loader gives the next batch.
// SEQUENTIAL: each loader in turn to exhaustion. ROUND_ROBIN: one batch from each in turn.
// WEIGHTED: a seeded draw by dataloaderWeights. ALTERNATING: an explicit pattern of loaders.
// Epoch length for loaders of different sizes: "longest" (until every loader is exhausted;
// exhausted ones are skipped), "shortest" (until the first is exhausted), or a fixed number of
// batches (exhausted loaders restart with their next epoch's order). The sampler's state (picks,
// cursor, RNG) is saved in checkpoints, so a resumed epoch continues in the same order.

import { z } from "zod";
import { Rng } from "../tensor/random.ts";
import { ConfigError } from "./config.ts";
import { normalizeConfigKeys } from "./config_keys.ts";
import { parseOrThrow } from "./training_config.ts";

export const SamplingStrategy = {
  SEQUENTIAL: "sequential",
  ROUND_ROBIN: "round_robin",
  WEIGHTED: "weighted",
  ALTERNATING: "alternating",
} as const;
export type SamplingStrategy = (typeof SamplingStrategy)[keyof typeof SamplingStrategy];

export const MultiDataLoaderConfigSchema = z.strictObject({
  samplingStrategy: z.enum(["sequential", "round_robin", "weighted", "alternating"]).default("sequential"),
  dataloaderNames: z.array(z.string().min(1)).min(1),
  dataloaderWeights: z.array(z.number().positive()).optional(),
  /** ALTERNATING: loader names (or indices) in the order they take turns, repeated */
  alternatingPattern: z.array(z.union([z.string(), z.number().int().nonnegative()])).optional(),
  /** "longest", "shortest", or a fixed number of batches per epoch */
  epochLength: z.union([z.literal("longest"), z.literal("shortest"), z.number().int().positive()]).default("longest"),
}).superRefine((c, ctx) => {
  if (new Set(c.dataloaderNames).size !== c.dataloaderNames.length) ctx.addIssue({ code: "custom", path: ["dataloaderNames"], message: "names must be unique" });
  if (c.samplingStrategy === "weighted") {
    if (!c.dataloaderWeights) ctx.addIssue({ code: "custom", path: ["dataloaderWeights"], message: "WEIGHTED sampling needs dataloaderWeights, one per loader" });
    else if (c.dataloaderWeights.length !== c.dataloaderNames.length) ctx.addIssue({ code: "custom", path: ["dataloaderWeights"], message: `${c.dataloaderWeights.length} weights for ${c.dataloaderNames.length} loaders` });
  }
  if (c.samplingStrategy === "alternating") {
    if (!c.alternatingPattern?.length) ctx.addIssue({ code: "custom", path: ["alternatingPattern"], message: "ALTERNATING sampling needs alternatingPattern" });
    for (const p of c.alternatingPattern ?? []) {
      if (typeof p === "string" ? !c.dataloaderNames.includes(p) : p >= c.dataloaderNames.length) {
        ctx.addIssue({ code: "custom", path: ["alternatingPattern"], message: `${JSON.stringify(p)} is not one of the loaders` });
      }
    }
  }
});
export type MultiDataLoaderConfigValues = z.infer<typeof MultiDataLoaderConfigSchema>;

export class MultiDataLoaderConfig {
  constructor(input: z.input<typeof MultiDataLoaderConfigSchema>, options: { source?: "file" | "api" } = {}) {
    const keyed = normalizeConfigKeys(input as Record<string, unknown>, { source: options.source ?? "api", what: "MultiDataLoaderConfig" });
    Object.assign(this, parseOrThrow(MultiDataLoaderConfigSchema, keyed, "MultiDataLoaderConfig"));
  }
}
export interface MultiDataLoaderConfig extends MultiDataLoaderConfigValues {}

export interface SamplerState {
  picks: number;
  cursor: number;
  exhausted: boolean[];
  rng: { s: number[]; spare: number | null };
}

/** Picks loaders for one epoch. The caller reports a loader whose batches ran out with exhausted(i). */
export class EpochSampler {
  readonly #config: MultiDataLoaderConfigValues;
  readonly #pattern: number[];
  #state: SamplerState;

  constructor(config: MultiDataLoaderConfigValues, seed: number, epoch: number) {
    this.#config = config;
    const n = config.dataloaderNames.length;
    this.#pattern = (config.alternatingPattern ?? []).map((p) => (typeof p === "string" ? config.dataloaderNames.indexOf(p) : p));
    this.#state = { picks: 0, cursor: 0, exhausted: new Array(n).fill(false), rng: new Rng(((seed >>> 0) * 2654435761 + epoch * 97 + 5) >>> 0).getState() };
  }

  get state(): SamplerState {
    return structuredClone(this.#state);
  }
  set state(s: SamplerState) {
    this.#state = structuredClone(s);
  }

  /** True when the epoch length is a fixed number of batches (exhausted loaders restart). */
  get fixedLength(): boolean {
    return typeof this.#config.epochLength === "number";
  }

  /** The next loader index, or null when the epoch is over. */
  next(): number | null {
    const c = this.#config;
    const s = this.#state;
    if (typeof c.epochLength === "number" && s.picks >= c.epochLength) return null;
    const live = s.exhausted.map((e, i) => (e ? -1 : i)).filter((i) => i >= 0);
    if (live.length === 0) return null;
    let pick: number;
    switch (c.samplingStrategy) {
      case "sequential":
        pick = live[0];
        break;
      case "round_robin": {
        const n = s.exhausted.length;
        let i = s.cursor % n;
        while (s.exhausted[i]) i = (i + 1) % n;
        pick = i;
        s.cursor = i + 1;
        break;
      }
      case "weighted": {
        const rng = new Rng(0);
        rng.setState(s.rng);
        const w = c.dataloaderWeights!;
        const total = live.reduce((a, i) => a + w[i], 0);
        let u = rng.next() * total;
        pick = live[live.length - 1];
        for (const i of live) {
          if ((u -= w[i]) < 0) {
            pick = i;
            break;
          }
        }
        s.rng = rng.getState();
        break;
      }
      case "alternating": {
        let tries = 0;
        while (s.exhausted[this.#pattern[s.cursor % this.#pattern.length]] && tries++ < this.#pattern.length) s.cursor++;
        if (tries > this.#pattern.length) return null;
        pick = this.#pattern[s.cursor % this.#pattern.length];
        s.cursor++;
        break;
      }
    }
    s.picks++;
    return pick;
  }

  /**
   * Loader i had no batch for the last pick: returns what the caller does — "end" the epoch,
   * "restart" loader i (fixed-length epochs) and take from it again, or "skip" to next().
   */
  exhausted(i: number): "end" | "restart" | "skip" {
    const s = this.#state;
    if (typeof this.#config.epochLength === "number") return "restart"; // the restarted loader serves this pick
    s.picks--; // the pick gave no batch
    if (this.#config.epochLength === "shortest") return "end";
    s.exhausted[i] = true;
    return "skip";
  }
}

/** The loader order of one epoch for loaders of known sizes (what the engine does, without data). */
export function samplingOrder(config: MultiDataLoaderConfigValues, sizes: readonly number[], seed = 0, epoch = 0): number[] {
  if (sizes.length !== config.dataloaderNames.length) throw new ConfigError(`${sizes.length} loader sizes for ${config.dataloaderNames.length} names`);
  const sampler = new EpochSampler(config, seed, epoch);
  const left = [...sizes];
  const order: number[] = [];
  for (let i = sampler.next(); i !== null; i = sampler.next()) {
    if (left[i] === 0) {
      const what = sampler.exhausted(i);
      if (what === "end") break;
      if (what === "restart") {
        left[i] = sizes[i] - 1;
        order.push(i);
      }
      continue;
    }
    left[i]--;
    order.push(i);
  }
  return order;
}
