// Reads a config file (JSON or YAML by extension) as a plain object; errors name the file.

import { readFile } from "node:fs/promises";
import { ConfigError } from "../train/config.ts";
import { describeFsError } from "../util/errors.ts";
import { jsonErrorPosition, yamlErrorPosition } from "../util/parse_position.ts";

export async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new ConfigError(`config file ${path}: ${describeFsError(e)}`);
  }
  const yaml = /\.ya?ml$/i.test(path);
  let value: unknown;
  try {
    value = yaml ? Bun.YAML.parse(text) : JSON.parse(text);
  } catch (e) {
    const at = yaml ? yamlErrorPosition(text) : jsonErrorPosition(text);
    throw new ConfigError(`config file ${path}: not valid ${yaml ? "YAML" : "JSON"}${at ? ` at ${at}` : ""}: ${(e as Error).message}`);
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) throw new ConfigError(`config file ${path}: expected an object at the top level`);
  return value as Record<string, unknown>;
}

/** YAML for a sectioned config (two levels of scalars); an empty section is `{}`. */
export function sectionsToYaml(value: Record<string, Record<string, unknown>>): string {
  const lines: string[] = [];
  for (const [section, fields] of Object.entries(value)) {
    const set = Object.entries(fields).filter(([, v]) => v !== undefined);
    lines.push(set.length ? `${section}:` : `${section}: {}`);
    for (const [k, v] of set) lines.push(`  ${k}: ${JSON.stringify(v)}`);
  }
  return lines.join("\n") + "\n";
}
