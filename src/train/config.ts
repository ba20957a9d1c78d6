// RunConfig: everything `kiln train` needs, as one zod schema (defaults = nanoGPT's baby GPT on
// Tiny Shakespeare). Sources merge in order: defaults, a YAML/JSON file, command-line flags.
// Errors name the field and the bad value.

import { z } from "zod";
import { readFile } from "node:fs/promises";
import { TrainArgs } from "./args.ts";
import { UserError } from "../util/errors.ts";
import { jsonErrorPosition, yamlErrorPosition } from "../util/parse_position.ts";

export const ModelArgs = z.strictObject({
  nLayer: z.number().int().positive().default(4),
  nHead: z.number().int().positive().default(4),
  nEmbd: z.number().int().positive().default(128),
  blockSize: z.number().int().positive().default(64),
  dropout: z.number().min(0).lt(1).default(0),
}).refine((m) => m.nEmbd % m.nHead === 0, { message: "nEmbd must be a multiple of nHead", path: ["nEmbd"] });

export const BackendArgs = z.strictObject({
  type: z.enum(["auto", "wasm", "webgpu"]).default("auto"),
  /** "cpu" accepts a software WebGPU adapter; for wasm, a thread count */
  device: z.string().optional(),
  dtype: z.enum(["f32"]).default("f32"),
});

export const SampleArgs = z.strictObject({
  /** characters to sample at the end of training */
  tokens: z.number().int().nonnegative().default(300),
  temperature: z.number().nonnegative().default(0.8),
  topK: z.number().int().positive().optional(),
  prompt: z.string().default("\n"),
});

export const RunConfig = z.strictObject({
  /** UTF-8 text file to train on (the character vocabulary comes from it) */
  data: z.string().default("data/tinyshakespeare.txt"),
  /** run folder (default: runs/<data name>-<time>) */
  out: z.string().optional(),
  backend: BackendArgs.default({ type: "auto", dtype: "f32" }),
  model: ModelArgs.default({ nLayer: 4, nHead: 4, nEmbd: 128, blockSize: 64, dropout: 0 }),
  train: TrainArgs.default(TrainArgs.parse({})),
  sample: SampleArgs.default(SampleArgs.parse({})),
});
export type RunConfig = z.infer<typeof RunConfig>;

/** Parses a config object, throwing an error that lists each bad field with its value. */
export function parseRunConfig(input: unknown, source = "config"): RunConfig {
  const result = RunConfig.safeParse(input);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const path = issue.path.join(".");
    const value = issue.path.reduce<unknown>((v, k) => (v && typeof v === "object" ? (v as Record<string | number, unknown>)[k as string] : undefined), input);
    return `  ${path || "(root)"}: ${issue.message}${value !== undefined ? ` (got ${JSON.stringify(value)})` : ""}`;
  });
  // one bad field: one line; several: one line each
  throw new ConfigError(lines.length === 1 ? `invalid ${source}: ${lines[0].trim()}` : `invalid ${source}:\n${lines.join("\n")}`);
}

/** A config or flag a user can fix (the CLI prints it as one line and exits 2). */
export class ConfigError extends UserError {
  override name = "ConfigError";
}

/** Reads a .yaml/.yml/.json config file into a plain object. */
export async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  const text = await readFile(path, "utf8").catch(() => {
    throw new ConfigError(`config file not found: ${path}`);
  });
  try {
    const value = /\.ya?ml$/i.test(path) ? Bun.YAML.parse(text) : JSON.parse(text);
    if (!value || typeof value !== "object" || Array.isArray(value)) throw new Error("the top level must be a mapping");
    return value as Record<string, unknown>;
  } catch (e) {
    const at = /\.ya?ml$/i.test(path) ? yamlErrorPosition(text) : jsonErrorPosition(text);
    throw new ConfigError(`cannot parse ${path}${at ? ` (${at})` : ""}: ${(e as Error).message}`);
  }
}

/** Deep-merges plain objects (b wins). */
export function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    if (v === undefined) continue;
    const prev = out[k];
    out[k] = isPlain(v) && isPlain(prev) ? merge(prev, v) : v;
  }
  return out;
}

function isPlain(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === "object" && !Array.isArray(v);
}
