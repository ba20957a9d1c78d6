// Parsing a config object against a zod schema with the keys users write: the key mapping is the
// engine's one normaliser (./config_keys.ts: snake_case and the shared aliases, renamed keys as
// errors); on top, keys the schema does not know are errors that suggest the nearest valid key, and
// bad values are errors naming the field and the value.

import type { z } from "zod";
import { ConfigError } from "./config.ts";
import { normalizeConfigKeys } from "./config_keys.ts";

export interface ParseOptions {
  /** spellings mapped before the shared normaliser (a config whose key means something else there,
   *  e.g. DPO's max_length, the whole sequence, not SFT's maxSeqLength) */
  aliases?: Record<string, string>;
  /** what the object is, for messages ("SFT config", "configs/run.yaml: sft") */
  source?: string;
}

/** The schema's parse of `input` after key normalisation; throws ConfigError naming each problem. */
export function normalizeKeys<S extends z.ZodObject>(schema: S, input: Record<string, unknown>, { aliases = {}, source = "config" }: ParseOptions = {}): z.infer<S> {
  if (!input || typeof input !== "object" || Array.isArray(input)) throw new ConfigError(`invalid ${source}: expected an object of settings`);
  const valid = Object.keys(schema.shape);
  const pre = Object.fromEntries(Object.entries(input).map(([k, v]) => [aliases[k] ?? k, v]));
  let canonical: Record<string, unknown>;
  try {
    canonical = normalizeConfigKeys(pre, { source: "file", what: source }, "");
  } catch (e) {
    throw new ConfigError(`invalid ${(e as Error).message}`);
  }
  // nested sections (a pipeline's sft/dpo) stay as written: the trainer they go to parses them
  const canonicalOf = (k: string) => Object.keys(normalizeConfigKeys({ [k]: 0 }, { source: "file" }))[0];
  for (const [k, v] of Object.entries(pre)) if (v && typeof v === "object" && !Array.isArray(v)) canonical[canonicalOf(k)] = v;
  const unknown = Object.keys(canonical).filter((k) => !valid.includes(k));
  if (unknown.length) {
    const original = (k: string) => Object.keys(pre).find((o) => canonicalOf(o) === k) ?? k;
    throw new ConfigError(`invalid ${source}: ${unknown.map((k) => {
      const near = nearest(original(k), valid);
      return `unknown key "${original(k)}"${near ? ` (did you mean "${near}"?)` : ""}`;
    }).join("; ")}`);
  }
  const result = schema.safeParse(canonical);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const key = String(issue.path[0] ?? "");
    const shown = key in canonical ? ` (got ${JSON.stringify(canonical[key])})` : "";
    return `${issue.path.join(".") || "(root)"}: ${issue.message}${shown}`;
  });
  throw new ConfigError(`invalid ${source}: ${lines.join("; ")}`);
}

/** The candidate closest to `key` by edit distance (ignoring case and _), if close enough. */
export function nearest(key: string, candidates: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/_/g, "");
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(norm(key), norm(c));
    if (d < bestD) [best, bestD] = [c, d];
  }
  return bestD <= Math.max(2, Math.floor(norm(key).length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}
