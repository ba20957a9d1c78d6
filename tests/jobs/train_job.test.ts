// A `train` job whose worker is killed with SIGKILL mid-run: another worker takes the job over when
// the lease expires and resumes it from the last checkpoint in the job's folder; the steps after the
// resume point lose exactly what an uninterrupted run of the same job loses (the Trainer's exact
// resume), and the result is stored once.

import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JobQueue } from "../../src/jobs/queue.ts";
import { Worker } from "../../src/jobs/worker.ts";
import { spawnWorker, until } from "./spawn.ts";

const dir = mkdtempSync(join(tmpdir(), "kiln-trainjob-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("kill -9 during a train job: another worker resumes it from its last checkpoint, losses as if never killed", async () => {
  const data = join(dir, "text.txt");
  writeFileSync(data, "the quick brown fox jumps over the lazy dog. ".repeat(40));
  const config = {
    data,
    backend: { type: "wasm", device: "1" },
    model: { nLayer: 1, nHead: 2, nEmbd: 16, blockSize: 16, dropout: 0.1 },
    train: { iters: 200, batchSize: 4, warmupIters: 5, evalInterval: 0, evalIters: 1, finalEvalIters: 1, logInterval: 1, checkpointInterval: 10, seed: 7 },
    sample: { tokens: 0 },
  };
  const url = `sqlite://${join(dir, "q.db")}`;
  const q = new JobQueue(url);
  const id = await q.submitJob({ task: "train", config });
  const artifacts = join(dir, "artifacts");
  const first = spawnWorker(url, artifacts, ["--lease", "1"]);
  const seen = await until(() => q.getJob(id), (j) => (j.progress?.step ?? 0) >= 25 || j.status === "failed", 90);
  expect(seen.error).toBeNull();
  first.kill("SIGKILL");
  await first.exited;
  const atKill = await q.getJob(id);
  expect(atKill.status).toBe("running"); // killed mid-run: no result yet
  expect(seen.progress!.step!).toBeLessThan(200);
  const second = spawnWorker(url, artifacts, ["--lease", "1"]);
  const done = await until(() => q.getJob(id), (j) => j.status !== "running" && j.status !== "queued", 120);
  second.kill("SIGTERM");
  expect(await second.exited).toBe(0);
  expect(done.status).toBe("completed");
  expect(done.attempts).toBe(2);
  const r = done.result as { steps: number; resumed_from: number; loss_history: number[]; run_folder: string };
  expect(r.steps).toBe(200);
  expect(r.resumed_from).toBeGreaterThanOrEqual(20);
  expect(r.resumed_from % 10).toBe(0);
  expect(r.loss_history).toHaveLength(200 - r.resumed_from);
  expect(r.run_folder).toBe(join(artifacts, id, "run"));

  // the same job, never interrupted, in this process
  const again = await q.submitJob({ task: "train", config });
  await new Worker({ queue: q, artifacts: join(dir, "artifacts2"), exitWhenIdle: true, log: () => {} }).run();
  const whole = (await q.getJobResults(again)) as { loss_history: number[] };
  expect(whole.loss_history).toHaveLength(200);
  expect(r.loss_history).toEqual(whole.loss_history.slice(r.resumed_from));
  await q.close();
}, 240_000);
