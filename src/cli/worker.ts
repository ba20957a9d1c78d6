// `kiln worker`: runs jobs from a queue (sqlite:// or postgres://) until SIGTERM/SIGINT, which stop
// claiming, let running jobs checkpoint, and hand them back to the queue. --import loads modules
// that register user tasks (registerTask) before the first claim.

import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "../jobs/worker.ts";
import { taskNames } from "../jobs/tasks.ts";
import { redact } from "../jobs/store.ts";
import { ConfigError } from "../train/config.ts";
import { env } from "../util/env.ts";
import { parseFlags } from "./flags.ts";

const HELP = `usage: kiln worker [options]

Claims jobs from the queue and runs them (built-in tasks: train, sft, dpo, pipeline; plus tasks
registered by --import modules). SIGTERM or Ctrl-C: stop claiming, checkpoint running jobs, hand
them back to the queue, exit.

options:
  --queue <url>          sqlite://<file> or postgres://user@host/db (default: $KILN_QUEUE or sqlite://kiln_jobs.db)
  --concurrency <n>      jobs at once (default 1)
  --artifacts <dir>      root of the jobs' folders; on several machines, a path they all see (default ./artifacts)
  --backend <name>       auto | wasm | webgpu, for tasks whose config leaves the backend open
  --import <file>        a module that calls registerTask() (repeatable)
  --tasks <a,b>          claim only these tasks
  --lease <seconds>      lease length (default 30): a dead worker's job is taken over after it
  --poll <seconds>       wait between claims on an empty queue (default 1)
  --exit-when-idle       exit when nothing is runnable and nothing is running
  --max-jobs <n>         exit after this many jobs
  -h, --help`;

export async function loadTaskModules(files: string[]): Promise<void> {
  for (const file of files) {
    try {
      await import(pathToFileURL(resolve(file)).href);
    } catch (e) {
      throw new ConfigError(`--import ${file}: ${(e as Error).message}`);
    }
  }
}

function num(values: Record<string, unknown>, flag: string, min: number): number | undefined {
  const raw = values[flag];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw === "" || !Number.isFinite(n) || n < min) throw new ConfigError(`--${flag} must be a number >= ${min} (got ${JSON.stringify(raw)})`);
  return n;
}

export async function main(argv: string[]): Promise<number> {
  const values = parseFlags({
    args: argv,
    options: {
      queue: { type: "string" }, concurrency: { type: "string" }, artifacts: { type: "string" }, backend: { type: "string" },
      import: { type: "string", multiple: true }, tasks: { type: "string" }, lease: { type: "string" }, poll: { type: "string" },
      "exit-when-idle": { type: "boolean" }, "max-jobs": { type: "string" }, help: { type: "boolean", short: "h" },
    },
  }, HELP);
  if (!values) return 0;
  await loadTaskModules((values.import as string[] | undefined) ?? []);
  const tasks = values.tasks ? (values.tasks as string).split(",").map((t) => t.trim()).filter(Boolean) : undefined;
  const known = taskNames();
  for (const t of tasks ?? []) if (!known.includes(t)) throw new ConfigError(`--tasks ${t}: no such task here (known: ${known.join(", ")})`);
  const lease = num(values, "lease", 0.5);
  const worker = new Worker({
    queue: (values.queue as string | undefined) ?? (env("KILN_QUEUE") || "sqlite://kiln_jobs.db"),
    concurrency: num(values, "concurrency", 1), artifacts: values.artifacts as string | undefined, backend: values.backend as string | undefined,
    tasks, leaseSeconds: lease, pollSeconds: num(values, "poll", 0.01), exitWhenIdle: !!values["exit-when-idle"], maxJobs: num(values, "max-jobs", 1),
  });
  await worker.queue.store(); // a bad URL fails here, before the first claim
  let signals = 0;
  const onSignal = (sig: string) => {
    if (++signals > 1) process.exit(130); // a second signal: leave now (leases expire; jobs resume elsewhere)
    console.error(`kiln worker: ${sig}: stopping (running jobs checkpoint and go back to the queue; send again to exit now)`);
    void worker.stop();
  };
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));
  console.error(`kiln worker ${worker.id}: queue ${redact(worker.queue.url)}, tasks ${(tasks ?? known).join(", ")}`);
  await worker.run();
  const c = worker.counts;
  console.error(`kiln worker ${worker.id}: done (${c.completed} completed, ${c.failed} failed, ${c.retried} retried, ${c.cancelled} cancelled, ${c.released} handed back)`);
  return 0;
}
