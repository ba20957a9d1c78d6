// Trials as queue jobs: N `trial` jobs of one study, run by a worker with two slots; each writes
// its suggested values into the inner task's config and tells the study the result's objective.

import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JobQueue } from "../../src/jobs/queue.ts";
import { Worker } from "../../src/jobs/worker.ts";
import { createStudy } from "../../src/jobs/study.ts";
import "./fixtures/tasks.ts";

const dir = mkdtempSync(join(tmpdir(), "kiln-trialjob-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("trial jobs fill one study in the queue's database; bad inner configs are refused at submit", async () => {
  const url = `sqlite://${join(dir, "q.db")}`;
  const q = new JobQueue(url);
  const spec = { study: "echo-search", task: "echo", config: { fixed: 1 }, space: { "opt.x": [-5, 5], "opt.k": ["a", "b"] }, objective: "opt.x", sampler: "random" };
  const ids: string[] = [];
  for (let i = 0; i < 8; i++) ids.push(await q.submitJob({ task: "trial", config: spec }));
  await expect(q.submitJob({ task: "trial", config: { ...spec, task: "nope" } })).rejects.toThrow(/unknown task "nope"/);
  await expect(q.submitJob({ task: "trial", config: { ...spec, task: "sleep", config: { ms: "x" } } })).rejects.toThrow(/config/);
  await new Worker({ queue: q, artifacts: join(dir, "a"), concurrency: 2, exitWhenIdle: true, log: () => {} }).run();
  const results = await Promise.all(ids.map(async (id) => (await q.getJob(id)).result as { trial: number; value: number; params: Record<string, unknown>; result: { fixed: number; opt: { x: number; k: string } } }));
  for (const r of results) {
    expect(r.result.fixed).toBe(1);
    expect(r.result.opt.x).toBe(r.params["opt.x"] as number);
    expect(["a", "b"]).toContain(r.result.opt.k);
    expect(r.value).toBe(r.result.opt.x);
  }
  expect(results.map((r) => r.trial).sort((a, b) => a - b)).toEqual([...Array(8).keys()]);
  const study = await createStudy({ storage: url, studyName: "echo-search", loadIfExists: true });
  expect(study.trials.map((t) => t.state)).toEqual(new Array(8).fill("complete"));
  expect(study.bestValue).toBe(Math.min(...results.map((r) => r.value)));
  await study.close();
  await q.close();
});
