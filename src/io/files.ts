// File helpers shared by the loaders (pretrained model folders, tokenizers, checkpoints): whether a
// file exists, and a JSON object read with an error that names the file. node:fs, so they run on
// Bun and Deno alike.

import { readFile, stat } from "node:fs/promises";

/** True when `path` is an existing file (a folder of that name is not). */
export async function exists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/**
 * The JSON object in the file at `path`, or undefined when there is no such file. A file that is
 * not valid JSON, or holds something other than an object, is an error naming it, prefixed with
 * `[who]` (the loader that read it).
 */
export async function readJson<T>(path: string, who: string): Promise<T | undefined> {
  if (!(await exists(path))) return undefined;
  const text = await readFile(path, "utf8");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(`[${who}] ${path} is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new Error(`[${who}] ${path} is not a JSON object (got ${Array.isArray(value) ? "a list" : JSON.stringify(value)})`);
  return value as T;
}
