// Tasks: what a job runs, by name. A job is data — a task name and a config — never a closure, so
// it can wait in a database and run on another machine. Each task has a zod schema its config must
// pass when the job is submitted (a bad config is refused then, not hours later on a worker) and a
// run function the worker calls with the parsed config and a TaskContext. The built-in tasks
// (train, sft, dpo, pipeline, export) are registered here; user tasks with registerTask() in a
// module the worker and the submitter load (`kiln worker --import ./tasks.ts`).
//
// A config value { "$from": jobId, "output": "adapter_path" } stands for an earlier job's output,
// resolved when the job starts; submitting adds jobId to the job's dependencies.

import type { z } from "zod";
import { BUILTIN_TASKS } from "./builtin.ts";
import { JobConfigError, type TaskDefinition, type TaskFn } from "./types.ts";
import { trialTask } from "./trial_task.ts";

export { JobConfigError, type TaskContext, type TaskDefinition, type TaskFn, type TaskProgress } from "./types.ts";

const TASKS = new Map<string, TaskDefinition<unknown>>(Object.entries(BUILTIN_TASKS));
// the trial task runs other tasks: it gets the registry's functions instead of importing them
TASKS.set("trial", trialTask({
  validate: (task, config) => validateJobConfig(task, config),
  runTask: async (task, config, ctx) => getTask(task).run(parseJobConfig(task, config), ctx),
}));

/** Registers a task by name (a later registration of the same name replaces it). */
export function registerTask<C>(name: string, run: TaskFn<C> | TaskDefinition<C>, options: { schema?: z.ZodType<C>; description?: string } = {}): void {
  if (!/^[A-Za-z0-9_.:-]+$/.test(name)) throw new JobConfigError(`task name ${JSON.stringify(name)}: use letters, digits, and _ . : -`);
  const def: TaskDefinition<C> = typeof run === "function" ? { run, ...options } : run;
  TASKS.set(name, def as TaskDefinition<unknown>);
}

export function getTask(name: string): TaskDefinition<unknown> {
  const def = TASKS.get(name);
  if (!def) {
    throw new JobConfigError(
      `unknown task ${JSON.stringify(name)} (known: ${taskNames().join(", ")}); register it with registerTask() in a module given to --import`,
    );
  }
  if (def.unavailable) throw new JobConfigError(`task ${name}: ${def.unavailable}`);
  return def;
}

/** Names of the tasks this process can run. */
export function taskNames(): string[] {
  return [...TASKS.entries()].filter(([, d]) => !d.unavailable).map(([n]) => n);
}

export interface FromRef {
  $from: string;
  output: string;
}

function isRef(v: unknown): v is FromRef {
  return !!v && typeof v === "object" && !Array.isArray(v) && typeof (v as FromRef).$from === "string";
}

/** Every $from reference in a config, with its path. */
export function findRefs(config: unknown, path: (string | number)[] = []): { path: (string | number)[]; ref: FromRef }[] {
  if (isRef(config)) {
    const keys = Object.keys(config).filter((k) => k !== "$from" && k !== "output");
    if (typeof config.output !== "string" || !config.output || keys.length)
      throw new JobConfigError(`config${path.map((p) => `.${p}`).join("")}: a reference is { "$from": <job id>, "output": "<result field>" }`);
    return [{ path, ref: config }];
  }
  if (Array.isArray(config)) return config.flatMap((v, i) => findRefs(v, [...path, i]));
  if (config && typeof config === "object") return Object.entries(config).flatMap(([k, v]) => findRefs(v, [...path, k]));
  return [];
}

/**
 * Checks a job's config against its task's schema at submit time. Values that are $from
 * references are not known yet: issues at or below them are not errors.
 */
export function validateJobConfig(task: string, config: unknown): void {
  const def = getTask(task);
  const refs = findRefs(config);
  if (!def.schema) return;
  const result = def.schema.safeParse(config);
  if (result.success) return;
  const under = (p: PropertyKey[]) => refs.some((r) => r.path.every((k, i) => String(p[i]) === String(k)));
  const issues = result.error.issues.filter((i) => !under(i.path));
  if (!issues.length) return;
  throw new JobConfigError(`invalid config for task ${task}: ${formatIssues(issues, config)}`);
}

/** Parses a config (refs already resolved) with its task's schema: defaults applied. */
export function parseJobConfig(task: string, config: unknown): unknown {
  const def = getTask(task);
  if (!def.schema) return config;
  const result = def.schema.safeParse(config);
  if (result.success) return result.data;
  throw new JobConfigError(`invalid config for task ${task}: ${formatIssues(result.error.issues, config)}`);
}

function formatIssues(issues: z.core.$ZodIssue[], input: unknown): string {
  return issues
    .map((issue) => {
      const path = issue.path.join(".");
      const value = issue.path.reduce<unknown>((v, k) => (v && typeof v === "object" ? (v as Record<PropertyKey, unknown>)[k] : undefined), input);
      return `${path || "(root)"}: ${issue.message}${value !== undefined && typeof value !== "object" ? ` (got ${JSON.stringify(value)})` : ""}`;
    })
    .join("; ");
}

/** The config with each reference replaced by the named field (a dotted path) of its job's result. */
export async function resolveRefs(config: unknown, results: (jobId: string) => Promise<{ status: string; result: unknown } | null>): Promise<unknown> {
  if (isRef(config)) {
    const job = await results(config.$from);
    if (!job) throw new JobConfigError(`$from ${config.$from}: no such job`);
    if (job.status !== "completed") throw new JobConfigError(`$from ${config.$from}: that job is ${job.status}, not completed`);
    let v: unknown = job.result;
    for (const k of config.output.split(".")) v = v && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined;
    if (v === undefined) throw new JobConfigError(`$from ${config.$from}: its result has no ${JSON.stringify(config.output)} (fields: ${Object.keys((job.result ?? {}) as object).join(", ")})`);
    return v;
  }
  if (Array.isArray(config)) return Promise.all(config.map((v) => resolveRefs(v, results)));
  if (config && typeof config === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(config)) out[k] = await resolveRefs(v, results);
    return out;
  }
  return config;
}
