// Load and faults, on SQLite and PostgreSQL: 3 worker processes, 200 short jobs, two workers killed
// with SIGKILL while they hold jobs, and restarted. Every job completes, exactly one result is
// stored per job (the result names the execution that stored it, and that execution happened),
// none is lost; the jobs a killed worker held are run again by another. Prints claiming throughput
// and the time to recover a dead worker's job (figures for the README; no timing is asserted).

import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { JobQueue } from "../../src/jobs/queue.ts";
import { openStores } from "./stores.ts";
import { spawnWorker, until } from "./spawn.ts";
import "./fixtures/tasks.ts";

const stores = openStores();
const dir = mkdtempSync(join(tmpdir(), "kiln-load-"));
afterAll(() => {
  stores.close();
  rmSync(dir, { recursive: true, force: true });
});

const JOBS = 200;
const LEASE = 1;

describe.each(stores.kinds)("load and faults on $name", (kind) => {
  test("3 workers, 200 jobs, two killed with -9 and restarted: every job completes exactly once", async () => {
    const url = await kind.fresh();
    const q = new JobQueue(url);
    const mark = join(dir, `${kind.name}-executions.txt`);
    const artifacts = join(dir, `${kind.name}-artifacts`);
    const ids: string[] = [];
    for (let i = 0; i < JOBS; i++) ids.push(await q.submitJob({ task: "sleep", config: { ms: 100 + (i % 4) * 20, mark }, maxAttempts: 5 }));
    const args = ["--lease", String(LEASE), "--poll", "0.05", "--concurrency", "2"];
    const workers: Subprocess[] = [0, 1, 2].map(() => spawnWorker(url, artifacts, args));
    const t0 = performance.now();
    const recoveries: number[] = [];
    const recovered = new Set<string>();
    const held = async (pid: number) => (await q.listJobs({ status: "running", limit: 1000 })).filter((j) => j.worker?.includes(`:${pid}:`));
    let kills = 0;
    for (const victim of [0, 1]) {
      // after some progress, kill the victim while it holds a job (if it had just finished one
      // when the signal landed, kill its replacement the same way)
      await until(async () => (await q.listJobs({ status: "completed", limit: 1000 })).length, (n) => n >= 40 * (victim + 1));
      for (let tries = 0; tries < 10; tries++) {
        const pid = workers[victim].pid;
        const busy = await until(async () => ({ held: (await held(pid)).length, left: (await q.listJobs({ status: ["queued", "running"], limit: 1000 })).length }), (v) => v.held > 0 || v.left === 0);
        if (!busy.held) break; // the queue drained first
        workers[victim].kill("SIGKILL");
        const killedAt = performance.now();
        await workers[victim].exited;
        kills++;
        workers[victim] = spawnWorker(url, artifacts, args);
        const lost = await held(pid);
        let taken = 0;
        for (const job of lost) {
          const done = await until(() => q.getJob(job.id), (j) => j.status === "completed");
          // attempts 1: the victim's completing write was already on its way to the database when
          // the signal landed, and it held the lease: its result stands, nothing to recover
          if (done.attempts < 2) continue;
          recoveries.push(performance.now() - killedAt);
          recovered.add(job.id);
          taken++;
        }
        if (taken) break;
      }
    }
    expect(kills).toBeGreaterThanOrEqual(2);
    expect(recoveries.length).toBeGreaterThanOrEqual(1);
    await until(async () => (await q.listJobs({ status: "completed", limit: 1000 })).length, (n) => n === JOBS, 100);
    const seconds = (performance.now() - t0) / 1000;
    for (const w of workers) w.kill("SIGTERM");
    const codes = await Promise.all(workers.map((w) => w.exited));
    expect(codes).toEqual([0, 0, 0]);

    // every job completed once, by an execution that really happened
    const executions = readFileSync(mark, "utf8").trim().split("\n").map((l) => l.split(" "));
    const jobs = await q.listJobs({ limit: 1000 });
    expect(jobs).toHaveLength(JOBS);
    let rerun = 0;
    for (const job of jobs) {
      expect(job.status).toBe("completed");
      const r = job.result as { job: string; attempt: number; pid: number };
      expect(r.job).toBe(job.id);
      const runs = executions.filter(([id]) => id === job.id);
      expect(runs.length).toBeGreaterThanOrEqual(1);
      expect(runs.some(([, attempt, pid]) => Number(attempt) === r.attempt && Number(pid) === r.pid)).toBe(true);
      if (job.attempts > 1) rerun++;
    }
    expect(new Set(executions.map(([id]) => id))).toEqual(new Set(ids));
    // a job can be lost twice (held by both victims in turn): count jobs, not recoveries
    expect(rerun).toBeGreaterThanOrEqual(recovered.size);
    const median = recoveries.sort((a, b) => a - b)[Math.floor(recoveries.length / 2)];
    console.log(
      `[jobs load ${kind.name}] ${JOBS} jobs (100-160 ms each), 3 workers x 2 slots, ${kills} kills: ${seconds.toFixed(1)} s, ` +
        `${(JOBS / seconds).toFixed(0)} jobs/s; ${recoveries.length} jobs recovered from dead workers, ` +
        `median ${(median / 1000).toFixed(2)} s from kill to completed (lease ${LEASE} s); ${executions.length - JOBS} extra executions`,
    );
    expect(existsSync(artifacts)).toBe(true);
    await q.close();
  }, 120_000);
});

test("claiming throughput, one process (no task work)", async () => {
  for (const kind of stores.kinds) {
    const q = new JobQueue(await kind.fresh());
    for (let i = 0; i < 200; i++) await q.submitJob({ task: "echo", config: { i } });
    const t0 = performance.now();
    let n = 0;
    for (let c = await q.claim("w", ["echo"], 30); c; c = await q.claim("w", ["echo"], 30)) {
      expect(await q.complete(c.job.id, c.token, {})).toBe(true);
      n++;
    }
    const s = (performance.now() - t0) / 1000;
    expect(n).toBe(200);
    console.log(`[jobs claim ${kind.name}] 200 claim+complete in ${s.toFixed(2)} s: ${(200 / s).toFixed(0)} jobs/s`);
    await q.close();
  }
}, 60_000);
