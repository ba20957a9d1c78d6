// The loaders' shared file helpers (src/io/files.ts): exists() is true for files only, readJson()
// gives undefined for a missing file and one error naming the file (and the loader) for a file that
// is not a JSON object.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exists, readJson } from "../../src/io/files.ts";

const dir = await mkdtemp(join(tmpdir(), "kiln-files-"));
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("exists / readJson", () => {
  test("exists: a file yes, a folder or nothing no", async () => {
    await writeFile(join(dir, "a.json"), '{"x": 1}');
    await mkdir(join(dir, "folder.json"));
    expect(await exists(join(dir, "a.json"))).toBe(true);
    expect(await exists(join(dir, "folder.json"))).toBe(false);
    expect(await exists(join(dir, "missing.json"))).toBe(false);
  });

  test("readJson: the object, undefined when missing, one error naming the file otherwise", async () => {
    expect(await readJson<{ x: number }>(join(dir, "a.json"), "test")).toEqual({ x: 1 });
    expect(await readJson(join(dir, "missing.json"), "test")).toBeUndefined();
    const bad = join(dir, "bad.json");
    await writeFile(bad, '{"x": ');
    await expect(readJson(bad, "loader")).rejects.toThrow(`[loader] ${bad} is not valid JSON (`);
    await writeFile(bad, "[1, 2]");
    await expect(readJson(bad, "loader")).rejects.toThrow(`[loader] ${bad} is not a JSON object (got a list)`);
    await writeFile(bad, "7");
    await expect(readJson(bad, "loader")).rejects.toThrow(`[loader] ${bad} is not a JSON object (got 7)`);
  });
});
