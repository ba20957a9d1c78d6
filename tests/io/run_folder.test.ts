// Run folders (src/io/run_folder.ts): two runs started in the same second get two folders; an
// existing non-empty --out is refused unless resumed or overwritten (and --overwrite only deletes a
// kiln run); the lock keeps a second process out and a dead process's lock is taken over; stale
// temp files of crashed saves are cleaned; fs failures are RunFolderErrors naming the folder.
// Also the strict UTF-8 reading of training text (src/data/text_file.ts).
import { afterAll, describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RunFolder, RunFolderError } from "../../src/io/run_folder.ts";
import { DataFileError, firstInvalidUtf8, readTextFile } from "../../src/data/text_file.ts";

const tmp = await mkdtemp(join(tmpdir(), "kiln-run-folder-"));
afterAll(() => rm(tmp, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(tmp, `case${n++}`);
const NOW = new Date("2026-12-06T15:00:00Z");

describe("run folders", () => {
  test("two runs started in the same second get two folders, each created exclusively", async () => {
    const root = fresh();
    const [a, b, c] = await Promise.all([0, 1, 2].map(() => RunFolder.open({ root, name: "shakespeare", now: NOW })));
    const paths = [a.path, b.path, c.path].sort();
    expect(paths).toEqual([
      join(root, "shakespeare-20261206-150000"),
      join(root, "shakespeare-20261206-150000-2"),
      join(root, "shakespeare-20261206-150000-3"),
    ]);
    for (const f of [a, b, c]) await f.release();
  });

  test("--out: a new or empty folder is taken; a non-empty one is refused with what to do", async () => {
    const out = fresh();
    const f = await RunFolder.open({ path: join(out, "deeper") });
    await f.release();
    await mkdir(join(out, "empty"));
    await (await RunFolder.open({ path: join(out, "empty") })).release();

    const run = join(out, "run");
    await mkdir(join(run, "checkpoints"), { recursive: true });
    await writeFile(join(run, "metrics.jsonl"), "{}\n");
    await writeFile(join(run, "checkpoints", "latest.json"), JSON.stringify({ dir: "step-0000010", step: 10, sha256: {} }));
    await expect(RunFolder.open({ path: run })).rejects.toThrow(
      `--out ${run} already exists and is a run folder (checkpoint at step 10): pass --resume ${run} to continue it, --overwrite to replace it, or another --out`,
    );
    const other = join(out, "photos");
    await mkdir(other);
    await writeFile(join(other, "cat.jpg"), "x");
    await expect(RunFolder.open({ path: other })).rejects.toThrow("already exists and is a folder with 1 entries");
    await expect(RunFolder.open({ path: other })).rejects.toBeInstanceOf(RunFolderError);
  });

  test("--overwrite replaces a run folder, and refuses to delete anything else", async () => {
    const out = fresh();
    const run = join(out, "run");
    await mkdir(join(run, "checkpoints", "step-0000010"), { recursive: true });
    await writeFile(join(run, "config.json"), "{}");
    const f = await RunFolder.open({ path: run, mode: "overwrite" });
    expect(await readdir(run)).toEqual([".lock"]);
    await f.release();

    const other = join(out, "home");
    await mkdir(other);
    await writeFile(join(other, "thesis.tex"), "x");
    await expect(RunFolder.open({ path: other, mode: "overwrite" })).rejects.toThrow("is not a kiln run folder");
    expect(await readFile(join(other, "thesis.tex"), "utf8")).toBe("x");
  });

  test("the lock: a second open of a held folder is refused; a dead process's lock is taken over", async () => {
    const run = fresh();
    const f = await RunFolder.open({ path: run });
    await writeFile(join(run, "metrics.jsonl"), "");
    const child = Bun.spawn(["sleep", "30"]);
    try {
      await writeFile(join(run, ".lock"), `${child.pid}\n`); // another live process holds it
      await expect(RunFolder.open({ path: run, mode: "resume" })).rejects.toThrow(`is in use by process ${child.pid}`);
      await expect(RunFolder.open({ path: run, mode: "overwrite" })).rejects.toThrow(`in use by process ${child.pid}`);
    } finally {
      child.kill(9);
      await child.exited;
    }
    const again = await RunFolder.open({ path: run, mode: "resume" }); // its process is gone now
    expect((await readFile(join(run, ".lock"), "utf8")).trim()).toBe(String(process.pid));
    await again.release();
    await f.release();
    expect(await readdir(run)).not.toContain(".lock");
  });

  test("leftovers of crashed saves are removed when a run resumes", async () => {
    const run = fresh();
    const ck = join(run, "checkpoints");
    await mkdir(join(ck, ".tmp-step-0000020-4242"), { recursive: true });
    await writeFile(join(ck, ".tmp-step-0000020-4242", "model.safetensors"), "partial");
    await writeFile(join(ck, ".latest.json.tmp-4242-a1b2c3d4e5f6"), "{");
    await writeFile(join(run, ".metrics.jsonl.tmp-4242-00ff00ff00ff"), "x");
    await mkdir(join(ck, "step-0000010"));
    const f = await RunFolder.open({ path: run, mode: "resume" });
    expect(f.cleaned.length).toBe(3);
    expect((await readdir(ck)).sort()).toEqual(["step-0000010"]);
    await f.release();
  });

  test("resume of a missing folder, and folders that cannot be created, are RunFolderErrors naming them", async () => {
    const out = fresh();
    await expect(RunFolder.open({ path: join(out, "nope"), mode: "resume" })).rejects.toThrow(`--resume ${join(out, "nope")}: no such run folder`);
    await mkdir(out);
    await writeFile(join(out, "file"), "x");
    await expect(RunFolder.open({ path: join(out, "file") })).rejects.toThrow("exists and is a file, not a folder");
    const err = await RunFolder.open({ path: join(out, "file", "run") }).catch((e) => e);
    expect(err).toBeInstanceOf(RunFolderError);
    expect(err.message).toContain("a component of the path is a file");
    const ro = await RunFolder.open({ path: "/proc/kiln-run" }).catch((e) => e);
    expect(ro).toBeInstanceOf(RunFolderError);
    expect(ro.message).toContain("/proc/kiln-run");
  });
});

describe("training text files", () => {
  test("UTF-8 reads; a BOM is dropped", async () => {
    const p = join(tmp, "ok.txt");
    await writeFile(join(tmp, "ok.txt"), "\ufeffcafé ü\n");
    expect(await readTextFile(p)).toBe("café ü\n");
  });

  test("Latin-1 is refused with the byte offset, and read when asked", async () => {
    const p = join(tmp, "latin1.txt");
    await writeFile(p, Buffer.from("abc caf\xe9 na\xefve", "latin1"));
    await expect(readTextFile(p, { what: "--data" })).rejects.toThrow(
      `--data ${p} is not UTF-8 text: invalid byte 0xe9 at offset 7; it may be Latin-1 or Windows-1252 text: convert it to UTF-8, or pass --encoding latin1`,
    );
    expect(await readTextFile(p, { encoding: "latin1" })).toBe("abc café naïve");
  });

  test("a binary file is called binary; a folder is a folder; a missing file is missing", async () => {
    const bin = join(tmp, "bin");
    await writeFile(bin, new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0, 0, 0xff, 0xfe, 0, 0]));
    await expect(readTextFile(bin)).rejects.toThrow("it looks like a binary file, not text");
    await expect(readTextFile(tmp)).rejects.toThrow(`${tmp} is a directory, not a text file`);
    await expect(readTextFile(join(tmp, "none.txt"))).rejects.toThrow("none.txt not found");
    await expect(readTextFile(bin, { encoding: "ebcdic" })).rejects.toThrow('unknown encoding "ebcdic"');
    await expect(readTextFile(tmp)).rejects.toBeInstanceOf(DataFileError);
  });

  test("firstInvalidUtf8 finds overlongs, surrogates, truncated and stray continuation bytes", () => {
    const at = (...b: number[]) => firstInvalidUtf8(Uint8Array.from(b));
    expect(at(0x61, 0xc0, 0x80)).toBe(1); // overlong
    expect(at(0x61, 0x62, 0xed, 0xa0, 0x80)).toBe(2); // surrogate
    expect(at(0xe2, 0x82)).toBe(0); // truncated
    expect(at(0x61, 0x80)).toBe(1); // stray continuation
    expect(at(0xf0, 0x9f, 0x98, 0x80, 0xf5)).toBe(4); // beyond U+10FFFF
    expect(at(0xe2, 0x82, 0xac)).toBe(3); // valid: the end
  });
});
