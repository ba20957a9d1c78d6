// `kiln jobs submit|status|list|cancel|results`: the queue from the command line. A submitted
// config is checked against its task's schema before it is queued (a user task's schema comes from
// the --import module that registers it).

import { parseArgs } from "node:util";
import { JobQueue, JOB_STATUSES, type Job, type JobStatus } from "../jobs/queue.ts";
import { ConfigError, merge, readConfigFile } from "../train/config.ts";
import { env } from "../util/env.ts";
import { loadTaskModules } from "./worker.ts";

const HELP = `usage: kiln jobs <command> [options]

commands:
  submit <task>       queue a job; prints its id
      --config <file>       the job's config (YAML or JSON); for train: the kiln train config
      --set <key=value>     a config value (dotted keys: --set train.iters=100); repeatable
      --priority <n>        higher runs first (default 0)
      --depends-on <ids>    comma-separated job ids that must complete first
      --max-attempts <n>    runs in all, retries included (default 3)
      --backoff <seconds>   first retry delay, doubled each retry (default 5)
      --name <text>         a label shown by list
      --import <file>       a module that registers the task (for user tasks' schemas)
  status <id>         status, attempts, progress, error
  list                jobs, oldest first  [--status queued,running,...] [--task name] [--limit n]
  cancel <id>         a queued job never runs; a running one stops at its next step
  results <id>        the stored result (JSON)

common options:
  --queue <url>       sqlite://<file> or postgres://user@host/db (default: $KILN_QUEUE or sqlite://kiln_jobs.db)
  --json              machine-readable output
  -h, --help`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === "-h" || command === "--help") {
    console.log(HELP);
    return command ? 0 : 2;
  }
  let values: Record<string, string | boolean | string[] | undefined>, positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      // "--priority -1": a negative number is the flag's value, not a flag
      args: rest.flatMap((a, i) => (/^-\d/.test(a) && rest[i - 1]?.startsWith("--") && !rest[i - 1].includes("=") ? [] : /^--/.test(a) && !a.includes("=") && /^-\d/.test(rest[i + 1] ?? "") ? [`${a}=${rest[i + 1]}`] : [a])),
      allowPositionals: true,
      options: {
        queue: { type: "string" }, json: { type: "boolean" }, config: { type: "string" }, set: { type: "string", multiple: true },
        priority: { type: "string" }, "depends-on": { type: "string" }, "max-attempts": { type: "string" }, backoff: { type: "string" },
        name: { type: "string" }, import: { type: "string", multiple: true }, status: { type: "string" }, task: { type: "string" },
        limit: { type: "string" }, help: { type: "boolean", short: "h" },
      },
      strict: true,
    }));
  } catch (e) {
    console.error(`kiln jobs: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!["submit", "status", "list", "cancel", "results"].includes(command)) {
    // before the queue is opened: a mistyped command must not create a database file
    console.error(`kiln jobs: unknown jobs command ${JSON.stringify(command)} (submit, status, list, cancel, results)`);
    return 2;
  }
  const queue = new JobQueue((values.queue as string | undefined) ?? (env("KILN_QUEUE") || "sqlite://kiln_jobs.db"));
  try {
    await queue.store(); // a bad URL is reported before anything else
    const json = !!values.json;
    const id = () => {
      if (positionals.length !== 1) throw new ConfigError(`kiln jobs ${command} takes one job id`);
      return positionals[0];
    };
    switch (command) {
      case "submit": {
        if (positionals.length !== 1) throw new ConfigError("kiln jobs submit takes one task name (train, sft, dpo, pipeline, or a registered task)");
        await loadTaskModules((values.import as string[] | undefined) ?? []);
        let config: Record<string, unknown> = values.config ? await readConfigFile(values.config as string) : {};
        for (const kv of (values.set as string[] | undefined) ?? []) config = merge(config, setting(kv));
        const jobId = await queue.submitJob({
          task: positionals[0], config, name: values.name as string | undefined,
          priority: int(values.priority, "priority"), maxAttempts: int(values["max-attempts"], "max-attempts"),
          backoff: values.backoff === undefined ? undefined : Number(values.backoff),
          dependsOn: values["depends-on"] ? (values["depends-on"] as string).split(",").map((s) => s.trim()).filter(Boolean) : undefined,
        });
        console.log(json ? JSON.stringify({ id: jobId }) : jobId);
        return 0;
      }
      case "status": {
        const job = await queue.getJob(id());
        console.log(json ? JSON.stringify(view(job), null, 2) : describe(job));
        return 0;
      }
      case "list": {
        const status = values.status ? ((values.status as string).split(",") as JobStatus[]) : undefined;
        for (const s of status ?? []) if (!JOB_STATUSES.includes(s)) throw new ConfigError(`--status ${s}: expected ${JOB_STATUSES.join(", ")}`);
        const jobs = await queue.listJobs({ status, task: values.task as string | undefined, limit: int(values.limit, "limit") ?? 100 });
        if (json) console.log(JSON.stringify(jobs.map(view), null, 2));
        else {
          console.log(`${"id".padEnd(36)}  ${"task".padEnd(10)} ${"status".padEnd(9)} prio  try  progress`);
          for (const j of jobs) console.log(`${j.id}  ${j.task.padEnd(10)} ${j.status.padEnd(9)} ${String(j.priority).padStart(4)}  ${`${j.attempts}/${j.maxAttempts}`.padEnd(4)} ${progressText(j)}${j.name ? `  ${j.name}` : ""}`);
        }
        return 0;
      }
      case "cancel": {
        const jobId = id();
        const changed = await queue.cancelJob(jobId);
        console.log(changed ? `cancelled ${jobId}` : `${jobId} had already finished (${await queue.getJobStatus(jobId)})`);
        return 0;
      }
      case "results": {
        const job = await queue.getJob(id());
        if (job.status !== "completed") {
          console.error(`kiln jobs: job ${job.id} is ${job.status}${job.error ? `: ${job.error}` : ""}; it has no result yet`);
          return 1;
        }
        console.log(JSON.stringify(job.result, null, json ? 0 : 2));
        return 0;
      }
      default:
        throw new ConfigError(`unknown jobs command ${JSON.stringify(command)} (submit, status, list, cancel, results)`);
    }
  } finally {
    await queue.close();
  }
}

function int(raw: unknown, flag: string): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new ConfigError(`--${flag} must be an integer (got ${JSON.stringify(raw)})`);
  return n;
}

/** "train.iters=100" -> { train: { iters: 100 } } (numbers, booleans, null and JSON values parsed). */
function setting(kv: string): Record<string, unknown> {
  const eq = kv.indexOf("=");
  if (eq <= 0) throw new ConfigError(`--set ${kv}: expected key=value`);
  const raw = kv.slice(eq + 1);
  let value: unknown = raw;
  try {
    value = JSON.parse(raw);
  } catch {
    // a bare string
  }
  return kv.slice(0, eq).split(".").reduceRight<unknown>((v, k) => ({ [k]: v }), value) as Record<string, unknown>;
}

function view(j: Job) {
  return { ...j, logs: undefined, createdAt: j.createdAt.toISOString(), startedAt: j.startedAt?.toISOString() ?? null, finishedAt: j.finishedAt?.toISOString() ?? null, leaseExpires: j.leaseExpires?.toISOString() ?? null };
}

function progressText(j: Job): string {
  const p = j.progress;
  if (!p) return "";
  const step = p.step !== undefined ? `step ${p.step}${p.total !== undefined ? `/${p.total}` : ""}` : "";
  const loss = typeof p.loss === "number" ? ` loss ${p.loss.toFixed(4)}` : "";
  return step + loss;
}

function describe(j: Job): string {
  const lines = [
    `job ${j.id}${j.name ? ` (${j.name})` : ""}: ${j.task}, ${j.status}`,
    `  attempts ${j.attempts} of ${j.maxAttempts}, priority ${j.priority}${j.dependsOn.length ? `, depends on ${j.dependsOn.join(", ")}` : ""}`,
    `  submitted ${j.createdAt.toISOString()}${j.startedAt ? `, started ${j.startedAt.toISOString()}` : ""}${j.finishedAt ? `, finished ${j.finishedAt.toISOString()}` : ""}`,
  ];
  if (j.worker && j.status === "running") lines.push(`  worker ${j.worker}, lease until ${j.leaseExpires?.toISOString()}`);
  if (j.progress) lines.push(`  progress ${progressText(j) || JSON.stringify(j.progress)}`);
  if (j.error) lines.push(`  error ${j.error}`);
  return lines.join("\n");
}
