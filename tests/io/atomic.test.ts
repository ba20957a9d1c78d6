// writeFileAtomic / writeJsonAtomic: content lands whole, and a write that fails before the rename
// leaves the old file as it was with no temp file behind.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "../../src/io/atomic.ts";

const dir = await mkdtemp(join(tmpdir(), "kiln-atomic-"));
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("writeFileAtomic", () => {
  test("creates a file from a string, bytes, and a list of chunks", async () => {
    await writeFileAtomic(join(dir, "a.txt"), "héllo");
    expect(await readFile(join(dir, "a.txt"), "utf8")).toBe("héllo");

    await writeFileAtomic(join(dir, "b.bin"), new Float32Array([1, 2]));
    expect([...new Float32Array((await readFile(join(dir, "b.bin"))).buffer.slice(0))]).toEqual([1, 2]);

    const big = new Uint8Array(100_000).map((_, i) => i % 251);
    await writeFileAtomic(join(dir, "c.bin"), [new Uint8Array([7]), big.subarray(10, 50_000), big.subarray(50_000)]);
    const back = new Uint8Array(await readFile(join(dir, "c.bin")));
    expect(back.length).toBe(1 + 49_990 + 50_000);
    expect(back[0]).toBe(7);
    expect(back[1]).toBe(10);
    expect(back[back.length - 1]).toBe(big[99_999]);
  });

  test("replaces an existing file", async () => {
    const path = join(dir, "replace.txt");
    await writeFile(path, "old");
    await writeFileAtomic(path, "new");
    expect(await readFile(path, "utf8")).toBe("new");
    expect((await readdir(dir)).filter((f) => f.includes(".tmp-"))).toEqual([]);
  });

  test("an interrupted write (throw between write and rename) leaves the old file intact", async () => {
    const path = join(dir, "interrupted.txt");
    await writeFile(path, "old contents");
    let tempSeen = "";
    const attempt = writeFileAtomic(path, "new contents that must not appear", {
      beforeRename: async (tempPath) => {
        tempSeen = tempPath;
        expect(await readFile(tempPath, "utf8")).toBe("new contents that must not appear");
        throw new Error("simulated crash");
      },
    });
    await expect(attempt).rejects.toThrow("simulated crash");
    expect(await readFile(path, "utf8")).toBe("old contents");
    expect(tempSeen.startsWith(dir)).toBe(true);
    expect((await readdir(dir)).filter((f) => f.includes(".tmp-"))).toEqual([]);
  });

  test("a failure while writing chunks leaves the old file intact", async () => {
    const path = join(dir, "chunks.txt");
    await writeFile(path, "old");
    function* chunks() {
      yield new TextEncoder().encode("partial");
      throw new Error("producer failed");
    }
    await expect(writeFileAtomic(path, chunks())).rejects.toThrow("producer failed");
    expect(await readFile(path, "utf8")).toBe("old");
    expect((await readdir(dir)).filter((f) => f.includes(".tmp-"))).toEqual([]);
  });
});

describe("writeJsonAtomic", () => {
  test("writes indented JSON with a trailing newline", async () => {
    const path = join(dir, "x.json");
    await writeJsonAtomic(path, { step: 3, loss: [1.5, 2] });
    const text = await readFile(path, "utf8");
    expect(text.endsWith("}\n")).toBe(true);
    expect(JSON.parse(text)).toEqual({ step: 3, loss: [1.5, 2] });
  });

  test("rejects a value JSON cannot hold", async () => {
    await expect(writeJsonAtomic(join(dir, "y.json"), undefined)).rejects.toThrow("not JSON-serialisable");
  });
});
