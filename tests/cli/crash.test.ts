// Crash test: `kiln train` killed with SIGKILL at random moments while it checkpoints every step
// (saves, and re-saves of a step that already has a checkpoint: --resume-from an earlier step of a
// finished run). After every kill, latest.json must name a complete checkpoint whose files match
// its checksums, and --resume must finish the run with exactly the losses of an uninterrupted run.
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Rng } from "../../src/tensor/random.ts";

const ROOT = join(import.meta.dir, "..", "..");
const MAIN = join(ROOT, "src", "cli", "main.ts");
const TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n".repeat(60);
const ITERS = 8;
const FLAGS = ["--backend", "wasm", "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "4",
  "--eval-interval", "0", "--log-interval", "1", "--checkpoint-interval", "1", "--sample-tokens", "0"];

/**
 * Runs kiln; with `kill`, SIGKILLs it `delayMs` after it printed step `afterStep` (a step line, so the
 * kill lands inside the run on a fast machine and on a slow one alike; the delay spreads it over the
 * step's checkpoint save).
 */
async function kiln(args: string[], kill?: { afterStep: number; delayMs: number }): Promise<{ code: number; stdout: string }> {
  const proc = Bun.spawn([process.execPath, MAIN, ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe", env: { ...process.env, KILN_BACKEND: "wasm" } });
  let stdout = "";
  let armed = kill !== undefined;
  const decoder = new TextDecoder();
  for await (const chunk of proc.stdout as unknown as AsyncIterable<Uint8Array>) {
    stdout += decoder.decode(chunk);
    const steps = [...stdout.matchAll(/step (\d+)\//g)].map((m) => Number(m[1]));
    if (armed && steps.length > 0 && Math.max(...steps) >= kill!.afterStep) {
      armed = false;
      setTimeout(() => proc.kill(9), kill!.delayMs);
    }
  }
  return { code: await proc.exited, stdout };
}

const sha = async (path: string) => createHash("sha256").update(await readFile(path)).digest("hex");
const lossesOf = async (dir: string) =>
  (await readFile(join(dir, "metrics.jsonl"), "utf8")).trim().split("\n").map((l) => JSON.parse(l)).filter((r) => typeof r.loss === "number").map((r) => [r.step, r.loss]);

/** latest.json names a folder whose files all match the checksums it records. */
async function expectIntact(run: string): Promise<number | null> {
  const text = await readFile(join(run, "checkpoints", "latest.json"), "utf8").catch(() => null);
  if (text === null) return null; // killed before the first save finished
  const latest = JSON.parse(text);
  for (const [file, want] of Object.entries(latest.sha256)) expect(await sha(join(run, "checkpoints", latest.dir, file))).toBe(want as string);
  return latest.step;
}

describe("kill -9 during checkpoints", () => {
  test("latest.json always names a complete, checksummed checkpoint; resume reproduces the uninterrupted losses", async () => {
    const tmp = await mkdtemp(join(tmpdir(), "kiln-crash-"));
    const data = join(tmp, "text.txt");
    await writeFile(data, TEXT);
    const config = join(tmp, "short-eval.json");
    await writeFile(config, JSON.stringify({ train: { finalEvalIters: 2 } }));
    FLAGS.push("--config", config);
    const reference = join(tmp, "reference");
    expect((await kiln(["train", "--data", data, "--out", reference, "--iters", String(ITERS), ...FLAGS])).code).toBe(0);
    const want = await lossesOf(reference);
    expect(want).toHaveLength(ITERS);

    const rng = new Rng(2026);
    let resumedChecks = 0;
    let killedMidRun = 0;
    for (let trial = 0; trial < 5; trial++) {
      const run = join(tmp, `run${trial}`);
      const killed = await kiln(["train", "--data", data, "--out", run, "--iters", String(ITERS), ...FLAGS], { afterStep: 1 + Math.floor(rng.next() * (ITERS - 2)), delayMs: Math.floor(rng.next() * 15) });
      const step = await expectIntact(run);
      if (step === null) continue;
      const resumed = await kiln(["train", "--resume", run]);
      expect(resumed.code).toBe(0);
      expect(await lossesOf(run)).toEqual(want);
      resumedChecks++;
      if (killed.code !== 0) killedMidRun++;
    }
    expect(killedMidRun).toBeGreaterThanOrEqual(2);
    expect(resumedChecks).toBeGreaterThanOrEqual(3);

    // re-saves: a finished run continued from an earlier checkpoint writes step ITERS again
    let resaves = 0;
    for (let trial = 0; trial < 5 && resaves < 3; trial++) {
      const run = join(tmp, `run${trial}`);
      if ((await expectIntact(run)) !== ITERS) continue;
      await kiln(["train", "--resume", run, "--resume-from", String(ITERS - 1)], { afterStep: 0, delayMs: Math.floor(rng.next() * 150) });
      resaves++;
      expect(await expectIntact(run)).not.toBeNull();
      const finished = await kiln(["train", "--resume", run]);
      expect(finished.code).toBe(0);
    }
    expect(resaves).toBeGreaterThanOrEqual(2);
  }, 90_000);
});
