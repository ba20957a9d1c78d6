// Checkpoint saves that never lose the last good checkpoint (src/io/checkpoint.ts): a re-save of the
// same step goes to a new folder and latest.json moves before the old one is removed; a failed save
// (disk full) keeps the last good checkpoint and names it; a corrupt or missing latest checkpoint
// names the newest intact older one, which loadCheckpoint({ step }) then loads.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, readdir, readFile, rm, writeFile, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CheckpointError, latestCheckpointStep, loadCheckpoint, saveCheckpoint } from "../../src/io/checkpoint.ts";
import { GPT } from "../../src/models/gpt.ts";
import { useBackend } from "../../src/tensor/tensor.ts";
import { getBackend } from "../backends.ts";

const tmp = await mkdtemp(join(tmpdir(), "kiln-checkpoint-"));
afterAll(() => rm(tmp, { recursive: true, force: true }));
beforeAll(async () => useBackend(await getBackend("wasm")));
let n = 0;

const tiny = (seed: number) => {
  const m = new GPT({ vocabSize: 5, blockSize: 4, nLayer: 1, nHead: 1, nEmbd: 4 });
  for (const p of m.parameters()) p.backend.upload(p.storage.buffer, new Float32Array(p.size).fill(seed));
  return m;
};
const firstWeight = async (m: GPT) => (await m.parameters()[0].data())[0];
const latest = async (root: string) => JSON.parse(await readFile(join(root, "latest.json"), "utf8"));
const save = (root: string, model: GPT, step: number, extra: Parameters<typeof saveCheckpoint>[1] extends infer O ? Partial<O> : never = {}) =>
  saveCheckpoint(root, { model, state: { step, optimizerStep: step }, ...extra });

describe("checkpoint re-save", () => {
  test("re-saving a step never removes the folder latest.json names before the new one is in place", async () => {
    const root = join(tmp, `c${n++}`);
    const a = tiny(1), b = tiny(2);
    await save(root, a, 10);
    expect((await latest(root)).dir).toBe("step-0000010");
    let seen: string | undefined;
    await save(root, b, 10, {
      beforeRename: async () => {
        // the moment a crash used to lose the run: latest.json must still name a complete checkpoint
        const l = await latest(root);
        seen = l.dir;
        const probe = tiny(0);
        await loadCheckpoint(root, { model: probe });
        expect(await firstWeight(probe)).toBe(1);
        probe.dispose();
      },
    });
    expect(seen).toBe("step-0000010");
    expect((await latest(root)).dir).toBe("step-0000010.2");
    expect((await readdir(root)).filter((d) => d.startsWith("step-"))).toEqual(["step-0000010.2"]);
    const probe = tiny(0);
    expect((await loadCheckpoint(root, { model: probe })).step).toBe(10);
    expect(await firstWeight(probe)).toBe(2);
    for (const m of [a, b, probe]) m.dispose();
  });

  test("a save that fails (disk full) keeps the last good checkpoint, says so, and leaves no temp folder", async () => {
    const root = join(tmp, `c${n++}`);
    const a = tiny(1);
    await save(root, a, 10);
    const full = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", path: join(root, ".tmp-step-0000020", "model.safetensors") });
    const err = await save(root, a, 20, { beforeRename: () => Promise.reject(full) }).catch((e) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err.message).toContain("cannot save step 20");
    expect(err.message).toContain("no space left on the device; the last good checkpoint (step 10, named by latest.json) is kept");
    expect((await readdir(root)).sort()).toEqual(["latest.json", "step-0000010"]);
    expect(await latestCheckpointStep(root)).toBe(10);
    a.dispose();
  });

  test("keeps the newest two steps; a save after resuming from an earlier step drops the later ones", async () => {
    const root = join(tmp, `c${n++}`);
    const a = tiny(1);
    for (const s of [10, 20, 30]) await save(root, a, s);
    expect((await readdir(root)).filter((d) => d.startsWith("step-")).sort()).toEqual(["step-0000020", "step-0000030"]);
    await save(root, a, 25);
    expect((await readdir(root)).filter((d) => d.startsWith("step-")).sort()).toEqual(["step-0000020", "step-0000025"]);
    a.dispose();
  });
});

describe("damaged checkpoints", () => {
  test("a corrupt latest checkpoint names the newest intact one; --resume-from (step) loads it", async () => {
    const root = join(tmp, `c${n++}`);
    const a = tiny(1), b = tiny(2);
    await save(root, a, 10);
    await save(root, b, 20);
    await writeFile(join(root, "step-0000020", "model.safetensors"), "garbage");
    const probe = tiny(0);
    const err = await loadCheckpoint(root, { model: probe }).catch((e) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err.message).toContain(`${join(root, "step-0000020", "model.safetensors")} is corrupt (checksum mismatch)`);
    expect(err.message).toContain(`step 10 (${join(root, "step-0000010")}) is intact: resume from it with --resume-from 10`);
    expect((await loadCheckpoint(root, { model: probe, step: 10 })).step).toBe(10);
    expect(await firstWeight(probe)).toBe(1);
    await writeFile(join(root, "step-0000010", "state.json"), "{}");
    await expect(loadCheckpoint(root, { model: probe })).rejects.toThrow("(checksum mismatch); no older intact checkpoint exists");
    await expect(loadCheckpoint(root, { model: probe, step: 15 })).rejects.toThrow("no checkpoint for step 15");
    for (const m of [a, b, probe]) m.dispose();
  });

  test("a missing or malformed latest.json points at the intact checkpoints", async () => {
    const root = join(tmp, `c${n++}`);
    const a = tiny(1);
    await save(root, a, 10);
    await writeFile(join(root, "latest.json"), "{not json");
    await expect(loadCheckpoint(root, { model: a })).rejects.toThrow("latest.json is malformed; step 10");
    await unlink(join(root, "latest.json"));
    await expect(loadCheckpoint(root, { model: a })).rejects.toThrow("(missing latest.json); step 10");
    expect(await latestCheckpointStep(root)).toBeNull();
    a.dispose();
  });
});
