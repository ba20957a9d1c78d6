// The shapes a task is written against: its context, its definition, and the error a bad job
// config raises. Kept apart from the registry so built-in tasks can use them without a cycle.

import type { z } from "zod";
import { UserError } from "../util/errors.ts";

export interface TaskProgress {
  step?: number;
  total?: number;
  loss?: number;
  [key: string]: unknown;
}

export interface TaskContext {
  jobId: string;
  /** 1 on the first run; more when the job is retried or resumed after a dead worker */
  attempt: number;
  /** aborted when the job is cancelled, its lease is lost, or the worker shuts down: stop at the next step (checkpoint first) */
  signal: AbortSignal;
  /** this job's own folder under the worker's --artifacts (the same path on every worker): checkpoints go here, so another worker can resume */
  dir: string;
  /** the URL of the queue the job came from (tasks that keep data beside the jobs use it) */
  queueUrl?: string;
  /** the worker's --backend, for tasks whose config leaves the backend to the worker */
  backend?: string;
  /** live progress, written to the queue with the next heartbeat */
  progress(p: TaskProgress): void;
  /** a line in the job's log (kept with the job; the tail is stored) */
  log(message: string): void;
}

export type TaskFn<C = unknown> = (config: C, ctx: TaskContext) => Promise<unknown> | unknown;

export interface TaskDefinition<C = unknown> {
  /** the config's schema, checked at submit time and again (with defaults applied) when the job starts */
  schema?: z.ZodType<C>;
  run: TaskFn<C>;
  /** set for a task this build of kiln cannot run yet: submitting it fails with this message */
  unavailable?: string;
  description?: string;
}

/** A job config or task that cannot be accepted (the CLI prints it as one line, exit 2). */
export class JobConfigError extends UserError {
  override name = "JobConfigError";
}
