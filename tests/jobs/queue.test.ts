// The job queue on SQLite and on a real PostgreSQL: submit-time validation, priorities, claiming
// (atomic under concurrent claimers), leases, exactly-once results, retries with backoff,
// dependencies and $from, cancellation reaching a running job, graceful worker stop.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JobQueue } from "../../src/jobs/queue.ts";
import { Worker } from "../../src/jobs/worker.ts";
import { JobConfigError } from "../../src/jobs/tasks.ts";
import { openStores } from "./stores.ts";
import "./fixtures/tasks.ts";

const stores = openStores();
afterAll(() => stores.close());
const artifacts = mkdtempSync(join(tmpdir(), "kiln-artifacts-"));
const quiet = () => {};

async function until<T>(f: () => Promise<T>, ok: (v: T) => boolean, seconds = 20): Promise<T> {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`condition not met in ${seconds} s (last: ${JSON.stringify(v)})`);
    await Bun.sleep(20);
  }
}

describe.each(stores.kinds)("job queue on $name", (kind) => {
  test("a bad config is refused at submit time, naming the field; unknown tasks too", async () => {
    const q = new JobQueue(await kind.fresh());
    await expect(q.submitJob({ task: "train", config: { train: { iters: -3 } } })).rejects.toThrow(/train\.iters.*got -3/);
    await expect(q.submitJob({ task: "train", config: { modle: {} } })).rejects.toThrow(/modle/);
    await expect(q.submitJob({ task: "sleep", config: { ms: "x" } })).rejects.toThrow(JobConfigError);
    await expect(q.submitJob({ task: "sft", config: { model: "m", data: "d.jsonl", lora_r: 0 } })).rejects.toThrow(/loraR|lora_r/);
    await expect(q.submitJob({ task: "nope" })).rejects.toThrow(/unknown task "nope"/);
    await expect(q.submitJob({ task: "export", config: {} })).rejects.toThrow(/exactly one of model .* or adapter/);
    await expect(q.submitJob({ task: "export", config: { model: "m", quantization: "q3" } })).rejects.toThrow(/quantization/);
    await expect(q.submitJob({ task: "echo", dependsOn: ["missing-id"] })).rejects.toThrow(/no job missing-id/);
    expect(await q.listJobs()).toHaveLength(0);
    // a valid one is queued with its config as given
    const id = await q.submitJob({ task: "train", config: { train: { iters: 5 } } });
    expect(await q.getJobStatus(id)).toBe("queued");
    expect((await q.getJob(id)).config).toEqual({ train: { iters: 5 } });
    await q.close();
  });

  test("claims go by priority, then submission order; dependencies hold a job back", async () => {
    const q = new JobQueue(await kind.fresh());
    const low = await q.submitJob({ task: "echo", config: { n: 1 } });
    const high = await q.submitJob({ task: "echo", config: { n: 2 }, priority: 10 });
    const after = await q.submitJob({ task: "echo", config: { n: 3 }, priority: 99, dependsOn: [low] });
    const low2 = await q.submitJob({ task: "echo", config: { n: 4 } });
    const order: string[] = [];
    for (;;) {
      const c = await q.claim("w", ["echo"], 30);
      if (!c) break;
      order.push(c.job.id);
      expect(await q.complete(c.job.id, c.token, c.job.config)).toBe(true);
    }
    expect(order).toEqual([high, low, after, low2]);
    // a worker only claims the tasks it has
    await q.submitJob({ task: "sleep", config: { ms: 1 } });
    expect(await q.claim("w", ["echo"], 30)).toBeNull();
    await q.close();
  });

  test("concurrent claimers never get the same job", async () => {
    const url = await kind.fresh();
    const q = new JobQueue(url);
    const ids = new Set<string>();
    for (let i = 0; i < 40; i++) ids.add(await q.submitJob({ task: "echo", config: { i } }));
    const claimers = Array.from({ length: 5 }, () => new JobQueue(url));
    const got: string[] = [];
    await Promise.all(claimers.map(async (c, w) => {
      for (;;) {
        const claim = await c.claim(`w${w}`, ["echo"], 30);
        if (!claim) return;
        got.push(claim.job.id);
      }
    }));
    expect(got.length).toBe(40);
    expect(new Set(got)).toEqual(ids);
    await Promise.all([q, ...claimers].map((c) => c.close()));
  });

  test("an expired lease is taken over; the old holder can no longer write; the result is stored once", async () => {
    const q = new JobQueue(await kind.fresh());
    const id = await q.submitJob({ task: "echo", config: {} });
    const first = (await q.claim("dead", ["echo"], 0.2))!;
    expect(await q.claim("other", ["echo"], 30)).toBeNull(); // leased
    await Bun.sleep(300);
    const second = (await q.claim("other", ["echo"], 30))!;
    expect(second.job.id).toBe(id);
    expect(second.job.attempts).toBe(2);
    expect(await q.heartbeat(id, first.token, 30)).toBe("lost");
    expect(await q.complete(id, first.token, { by: "dead" })).toBe(false);
    expect(await q.complete(id, second.token, { by: "other" })).toBe(true);
    expect(await q.complete(id, second.token, { by: "again" })).toBe(false);
    expect(await q.getJobResults(id)).toEqual({ by: "other" });
    // a job whose lease expires on its last attempt fails, saying why
    const once = await q.submitJob({ task: "echo", maxAttempts: 1 });
    await q.claim("dead", ["echo"], 0.1);
    await Bun.sleep(200);
    expect(await q.claim("other", ["echo"], 30)).toBeNull();
    const job = await q.getJob(once);
    expect(job.status).toBe("failed");
    expect(job.error).toMatch(/lease expired/);
    await q.close();
  });

  test("a worker retries with backoff, keeps the error of a job that fails for good, resolves $from", async () => {
    const q = new JobQueue(await kind.fresh());
    const ok = await q.submitJob({ task: "flaky", config: { succeedOn: 2 }, backoff: 0.05 });
    const bad = await q.submitJob({ task: "flaky", config: { succeedOn: 9 }, maxAttempts: 2, backoff: 0.05 });
    const chained = await q.submitJob({ task: "echo", config: { got: { $from: ok, output: "attempt" }, n: [{ $from: ok, output: "attempt" }] } });
    const doomed = await q.submitJob({ task: "echo", config: { x: { $from: bad, output: "attempt" } } });
    const missing = await q.submitJob({ task: "echo", config: { x: { $from: ok, output: "no.such.field" } } });
    const worker = new Worker({ queue: q, artifacts, exitWhenIdle: true, pollSeconds: 0.02, log: quiet });
    // exitWhenIdle would stop during a backoff: run until everything has settled
    await until(async () => (await worker.run(), (await q.listJobs({ status: ["queued", "running"] })).length), (n) => n === 0);
    expect(await q.getJobResults(ok)).toEqual({ attempt: 2 });
    const failed = await q.getJob(bad);
    expect(failed.status).toBe("failed");
    expect(failed.attempts).toBe(2);
    expect(failed.error).toMatch(/flaky failure on attempt 2/);
    expect(failed.logs).toMatch(/attempt 2 of 2/);
    expect(await q.getJobResults(chained)).toEqual({ got: 2, n: [2] });
    expect((await q.getJob(chained)).dependsOn).toEqual([ok]);
    // a reference to a field the result lacks fails at once (retrying cannot help), naming it
    const m = await q.getJob(missing);
    expect([m.status, m.attempts]).toEqual(["failed", 1]);
    expect(m.error).toMatch(/no "no\.such\.field"/);
    expect(await q.getJobStatus(doomed)).toBe("failed");
    expect((await q.getJob(doomed)).error).toMatch(/depends on failed/);
    await q.close();
  });

  test("a train job whose data file is missing fails at once (retrying cannot help), naming the file", async () => {
    const q = new JobQueue(await kind.fresh());
    const data = join(artifacts, "no-such-data.txt");
    const id = await q.submitJob({ task: "train", config: { data, train: { iters: 2 } }, maxAttempts: 3, backoff: 0.05 });
    const worker = new Worker({ queue: q, artifacts, exitWhenIdle: true, pollSeconds: 0.02, log: quiet });
    await until(async () => (await worker.run(), (await q.listJobs({ status: ["queued", "running"] })).length), (n) => n === 0);
    const job = await q.getJob(id);
    expect([job.status, job.attempts]).toEqual(["failed", 1]);
    expect(job.error).toContain("no-such-data.txt");
    await q.close();
  });

  test("progress is visible while a job runs; cancelling stops it at its next step", async () => {
    const q = new JobQueue(await kind.fresh());
    const id = await q.submitJob({ task: "loop", config: { steps: 100000, ms: 5 } });
    const queued = await q.submitJob({ task: "loop", config: { steps: 1, ms: 1 } });
    expect(await q.cancelJob(queued)).toBe(true);
    const worker = new Worker({ queue: q, artifacts, leaseSeconds: 1.2, heartbeatSeconds: 0.1, pollSeconds: 0.02, log: quiet });
    const running = worker.run();
    const job = await until(() => q.getJob(id), (j) => (j.progress?.step ?? 0) >= 5);
    expect(job.status).toBe("running");
    expect(job.progress!.total).toBe(100000);
    expect(await q.cancelJob(id)).toBe(true);
    await until(async () => worker.counts.cancelled, (n) => n === 1);
    expect(await q.getJobStatus(id)).toBe("cancelled");
    expect(await q.getJobStatus(queued)).toBe("cancelled");
    expect(await q.cancelJob(id)).toBe(false);
    await worker.stop();
    await running;
    await q.close();
  });

  test("stop() hands a running job back to the queue, its attempt not counted", async () => {
    const q = new JobQueue(await kind.fresh());
    const id = await q.submitJob({ task: "loop", config: { steps: 100000, ms: 5 } });
    const worker = new Worker({ queue: q, artifacts, heartbeatSeconds: 0.1, leaseSeconds: 5, pollSeconds: 0.02, log: quiet });
    const running = worker.run();
    await until(() => q.getJob(id), (j) => (j.progress?.step ?? 0) >= 3);
    await worker.stop();
    await running;
    const job = await q.getJob(id);
    expect(job.status).toBe("queued");
    expect(job.attempts).toBe(0);
    expect(job.logs).toMatch(/handed back/);
    expect(worker.counts.released).toBe(1);
    await q.close();
  });
});
