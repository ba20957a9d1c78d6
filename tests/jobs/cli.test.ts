// kiln jobs and kiln worker from the command line: submit (checked against the task's schema),
// status, list, results, cancel; a worker that drains the queue; bad input is one line and exit 2.

import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");
const dir = mkdtempSync(join(tmpdir(), "kiln-jobs-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const queue = `sqlite://${join(dir, "q.db")}`;
const tasks = join(import.meta.dir, "fixtures/tasks.ts");

async function kiln(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn([process.execPath, join(ROOT, "src/cli/main.ts"), ...args], { cwd: dir, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out: out.trim(), err: err.trim() };
}

test("submit, run with a worker, read status, list and results; cancel a queued job", async () => {
  const sub = await kiln("jobs", "submit", "sleep", "--queue", queue, "--import", tasks, "--set", "ms=1", "--name", "first");
  expect(sub.err).toBe("");
  expect(sub.code).toBe(0);
  const id = sub.out;
  expect((await kiln("jobs", "status", id, "--queue", queue)).out).toMatch(/sleep, queued/);
  const other = (await kiln("jobs", "submit", "sleep", "--queue", queue, "--import", tasks, "--set", "ms=1", "--priority", "-1")).out;
  expect((await kiln("jobs", "cancel", other, "--queue", queue)).out).toBe(`cancelled ${other}`);
  const w = await kiln("worker", "--queue", queue, "--import", tasks, "--exit-when-idle", "--poll", "0.05", "--artifacts", join(dir, "a"));
  expect(w.code).toBe(0);
  expect(w.err).toMatch(/1 completed/);
  const results = await kiln("jobs", "results", id, "--queue", queue);
  expect(JSON.parse(results.out).job).toBe(id);
  const list = JSON.parse((await kiln("jobs", "list", "--queue", queue, "--json")).out) as { id: string; status: string; name: string }[];
  expect(list.map((j) => [j.id, j.status])).toEqual([[id, "completed"], [other, "cancelled"]]);
  expect((await kiln("jobs", "list", "--queue", queue, "--status", "cancelled")).out).toContain(other);
  expect((await kiln("jobs", "cancel", id, "--queue", queue)).out).toMatch(/already finished \(completed\)/);
  const none = await kiln("jobs", "results", other, "--queue", queue);
  expect(none.code).toBe(1);
  expect(none.err).toMatch(/cancelled; it has no result/);
}, 60_000);

test("bad input: one line naming the field or flag, exit code 2", async () => {
  const cases = [
    [["jobs", "submit", "train", "--queue", queue, "--set", "train.iters=-1"], /train\.iters/],
    [["jobs", "submit", "nope", "--queue", queue], /unknown task "nope"/],
    [["jobs", "submit", "export", "--queue", queue], /exactly one of model/],
    [["jobs", "status", "no-such-id", "--queue", queue], /no job no-such-id/],
    [["jobs", "list", "--queue", queue, "--status", "done"], /--status done/],
    [["jobs", "submit", "sleep", "--queue", "mysql://x"], /expected sqlite:\/\/<file> or postgres:\/\//],
    [["worker", "--queue", queue, "--lease", "soon"], /--lease must be a number/],
    [["worker", "--queue", queue, "--import", join(dir, "missing.ts")], /--import .*missing\.ts/],
    [["jobs", "frobnicate", "--queue", queue], /unknown jobs command/],
  ] as const;
  for (const [args, message] of cases) {
    const r = await kiln(...args);
    expect({ args, code: r.code }).toEqual({ args, code: 2 });
    expect(r.err.split("\n")).toHaveLength(1);
    expect(r.err).toMatch(message);
  }
}, 60_000);
