// The flag preamble kiln's verbs share: node:util parseArgs where a bad flag is a UserError (one
// line, exit 2), the verb's help printed for --help, and --out with its alias --output.

import { parseArgs, type ParseArgsConfig } from "node:util";
import { UserError } from "../util/errors.ts";

export type FlagValues = Record<string, string | boolean | string[] | undefined>;

/** The parsed flags, or null when --help asked for `help` (printed here; the verb returns 0). */
export function parseFlags(config: ParseArgsConfig, help: string): FlagValues | null {
  return parseCommand(config, help)?.values ?? null;
}

/** parseFlags with the positional arguments too (config.allowPositionals). */
export function parseCommand(config: ParseArgsConfig, help: string): { values: FlagValues; positionals: string[] } | null {
  let parsed: { values: FlagValues; positionals: string[] };
  try {
    parsed = parseArgs(config) as { values: FlagValues; positionals: string[] };
  } catch (e) {
    throw new UserError((e as Error).message);
  }
  if (parsed.values.help) {
    console.log(help);
    return null;
  }
  return parsed;
}

/** --out, or its alias --output. */
export function outFlag(values: FlagValues): string | undefined {
  return (values.out ?? values.output) as string | undefined;
}
