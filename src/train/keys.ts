// The config-key normaliser (DESIGN.md, "Names shared across issues"): a config object written
// with the names users bring from PEFT/TRL/HF/nanoGPT (snake_case, or listed aliases) becomes the
// camelCase object a zod schema parses. Unknown keys are errors that suggest the nearest valid key;
// bad values are errors naming the field and the value. One function, used by every config.

import type { z } from "zod";
import { ConfigError } from "./config.ts";

export interface NormalizeOptions {
  /** extra spellings → canonical camelCase key (snake_case of a canonical key needs no entry) */
  aliases?: Record<string, string>;
  /** renamed keys that are errors: old → new (the message names the new key) */
  renamed?: Record<string, string>;
  /** what the object is, for messages ("SFT config", "configs/run.yaml: sft") */
  source?: string;
}

/** snake_case → camelCase ("learning_rate" → "learningRate"); camelCase stays. */
export function camelCase(key: string): string {
  return key.replace(/_+([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** The object with every key canonical; throws ConfigError for unknown or duplicate keys. */
export function canonicalKeys(input: Record<string, unknown>, valid: readonly string[], { aliases = {}, renamed = {}, source = "config" }: NormalizeOptions = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const from: Record<string, string> = {};
  const problems: string[] = [];
  for (const [key, value] of Object.entries(input)) {
    if (value === undefined) continue;
    if (key in renamed) {
      problems.push(`"${key}" was renamed to "${renamed[key]}"`);
      continue;
    }
    const canonical = aliases[key] ?? (valid.includes(key) ? key : camelCase(key));
    if (!valid.includes(canonical)) {
      const near = nearest(key, [...valid, ...Object.keys(aliases)]);
      problems.push(`unknown key "${key}"${near ? ` (did you mean "${near}"?)` : ""}`);
      continue;
    }
    if (canonical in out) {
      problems.push(`"${key}" and "${from[canonical]}" both set ${canonical}`);
      continue;
    }
    out[canonical] = value;
    from[canonical] = key;
  }
  if (problems.length) throw new ConfigError(`invalid ${source}: ${problems.join("; ")}`);
  return out;
}

/** canonicalKeys, then the schema's parse, with errors naming each field and its value. */
export function normalizeKeys<S extends z.ZodObject>(schema: S, input: Record<string, unknown>, options: NormalizeOptions = {}): z.infer<S> {
  if (!input || typeof input !== "object" || Array.isArray(input)) throw new ConfigError(`invalid ${options.source ?? "config"}: expected an object of settings`);
  const canonical = canonicalKeys(input, Object.keys(schema.shape), options);
  const result = schema.safeParse(canonical);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const key = String(issue.path[0] ?? "");
    const shown = key in canonical ? ` (got ${JSON.stringify(canonical[key])})` : "";
    return `${issue.path.join(".") || "(root)"}: ${issue.message}${shown}`;
  });
  throw new ConfigError(`invalid ${options.source ?? "config"}: ${lines.join("; ")}`);
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
