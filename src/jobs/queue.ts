// JobQueue: jobs as rows in one database (sqlite:// for one machine, postgres:// for many; the same
// code). Submitting validates the config against the task's schema. Workers claim atomically —
// PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: an immediate transaction — and hold a lease they renew
// by heartbeat. A job whose lease expires (its worker died) is claimable again: execution is
// at-least-once. Every write a worker makes after claiming is conditional on still holding the
// lease (its token), so a job's result is stored exactly once, by the worker that holds the lease.

import { UserError } from "../util/errors.ts";
import { Store, parseJson, redact } from "./store.ts";
import { findRefs, JobConfigError, validateJobConfig, type TaskProgress } from "./tasks.ts";

export type JobStatus = "queued" | "running" | "completed" | "failed" | "cancelled";
export const JOB_STATUSES: readonly JobStatus[] = ["queued", "running", "completed", "failed", "cancelled"];

export interface JobSpec {
  task: string;
  config?: unknown;
  /** higher runs first (default 0); equal priorities run in submission order */
  priority?: number;
  /** jobs that must complete first ($from references are added automatically) */
  dependsOn?: string[];
  /** runs in all, counting retries after errors and takeovers after a dead worker (default 3) */
  maxAttempts?: number;
  /** first retry delay in seconds, doubled each retry (default 5) */
  backoff?: number;
  name?: string;
}

export interface Job {
  id: string;
  name: string | null;
  task: string;
  config: unknown;
  status: JobStatus;
  priority: number;
  dependsOn: string[];
  attempts: number;
  maxAttempts: number;
  worker: string | null;
  progress: TaskProgress | null;
  result: unknown;
  error: string | null;
  logs: string | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  /** when the lease of a running job ends unless renewed */
  leaseExpires: Date | null;
}

/** A claimed job: the job and the lease token every later write must present. */
export interface Claim {
  job: Job;
  token: string;
}

/** What a heartbeat learned: the lease is held, or the job was cancelled, or the lease is gone. */
export type HeartbeatState = "held" | "cancelled" | "lost";

export class JobNotFoundError extends UserError {
  override name = "JobNotFoundError";
}

function toDate(ms: unknown): Date | null {
  return ms === null || ms === undefined ? null : new Date(Number(ms));
}

function toJob(r: Record<string, unknown>): Job {
  return {
    id: r.id as string, name: (r.name as string | null) ?? null, task: r.task as string, config: parseJson(r.config),
    status: r.status as JobStatus, priority: Number(r.priority), dependsOn: parseJson<string[]>(r.depends_on) ?? [],
    attempts: Number(r.attempts), maxAttempts: Number(r.max_attempts), worker: (r.worker as string | null) ?? null,
    progress: parseJson<TaskProgress>(r.progress), result: parseJson(r.result), error: (r.error as string | null) ?? null,
    logs: (r.logs as string | null) ?? null, createdAt: toDate(r.created_at)!, startedAt: toDate(r.started_at),
    finishedAt: toDate(r.finished_at), leaseExpires: toDate(r.lease_expires),
  };
}

export class JobQueue {
  readonly url: string;
  #store: Promise<Store>;

  constructor(url = "sqlite://kiln_jobs.db") {
    this.url = url;
    this.#store = Store.open(url);
    this.#store.catch(() => {}); // reported by the first call
  }

  /** The database (opened on first use). */
  store(): Promise<Store> {
    return this.#store;
  }

  /** Validates the config against the task's schema and queues the job; returns its id. */
  async submitJob(spec: JobSpec): Promise<string> {
    if (!spec || typeof spec.task !== "string") throw new JobConfigError("a job needs a task name: { task: \"train\", config: {...} }");
    const config = spec.config ?? {};
    validateJobConfig(spec.task, config);
    const deps = [...new Set([...(spec.dependsOn ?? []), ...findRefs(config).map((r) => r.ref.$from)])];
    const maxAttempts = spec.maxAttempts ?? 3;
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new JobConfigError(`maxAttempts must be a positive integer (got ${spec.maxAttempts})`);
    const priority = spec.priority ?? 0;
    if (!Number.isInteger(priority)) throw new JobConfigError(`priority must be an integer (got ${spec.priority})`);
    const backoff = spec.backoff ?? 5;
    if (!(backoff >= 0)) throw new JobConfigError(`backoff must be a number of seconds >= 0 (got ${spec.backoff})`);
    const id = Bun.randomUUIDv7();
    const store = await this.#store;
    await store.transaction(async (tx) => {
      for (const dep of deps) {
        const found = await tx.unsafe("SELECT id FROM kiln_jobs WHERE id = $1", [dep]);
        if (!found.length) throw new JobConfigError(`dependsOn / $from: no job ${dep} in ${redact(this.url)}`);
      }
      await tx.unsafe(
        `INSERT INTO kiln_jobs (id, name, task, config, status, priority, depends_on, attempts, max_attempts, backoff_ms, run_after, created_at)
         VALUES ($1, $2, $3, $4, 'queued', $5, $6, 0, $7, $8, NOW(), NOW())`,
        [id, spec.name ?? null, spec.task, JSON.stringify(config), priority, JSON.stringify(deps), maxAttempts, backoff * 1000],
      );
      for (const dep of deps) await tx.unsafe("INSERT INTO kiln_job_deps (job_id, dep_id) VALUES ($1, $2)", [id, dep]);
    });
    return id;
  }

  async getJob(id: string): Promise<Job> {
    const rows = await (await this.#store).query("SELECT * FROM kiln_jobs WHERE id = $1", [id]);
    if (!rows.length) throw new JobNotFoundError(`no job ${id} in ${redact(this.url)}`);
    return toJob(rows[0]);
  }

  async getJobStatus(id: string): Promise<JobStatus> {
    return (await this.getJob(id)).status;
  }

  /** The result a completed job stored (null while it has none). */
  async getJobResults(id: string): Promise<unknown> {
    return (await this.getJob(id)).result;
  }

  async listJobs({ status, task, limit = 100 }: { status?: JobStatus | JobStatus[]; task?: string; limit?: number } = {}): Promise<Job[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const statuses = status === undefined ? [] : Array.isArray(status) ? status : [status];
    for (const s of statuses) if (!JOB_STATUSES.includes(s)) throw new JobConfigError(`status ${JSON.stringify(s)}: expected one of ${JOB_STATUSES.join(", ")}`);
    if (statuses.length) where.push(`status IN (${statuses.map((s) => (params.push(s), `$${params.length}`)).join(", ")})`);
    if (task) where.push(`task = $${params.push(task)}`);
    params.push(limit);
    const rows = await (await this.#store).query(
      `SELECT * FROM kiln_jobs ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at, id LIMIT $${params.length}`,
      params,
    );
    return rows.map(toJob);
  }

  /**
   * Cancels a job: a queued one never runs; a running one is marked cancelled at once and its
   * worker stops it at the next step (trainers checkpoint first) — the worker's later writes fail.
   * Returns false when the job had already finished.
   */
  async cancelJob(id: string): Promise<boolean> {
    await this.getJob(id);
    const r = await (await this.#store).query(
      `UPDATE kiln_jobs SET status = 'cancelled', finished_at = NOW(), lease_token = NULL, lease_expires = NULL
       WHERE id = $1 AND status IN ('queued', 'running')`,
      [id],
    );
    return r.count > 0;
  }

  /**
   * Claims the next runnable job among `tasks`: highest priority, then oldest; its dependencies
   * completed; queued and due, or running with an expired lease (its worker died). Jobs whose lease
   * expired on their last attempt fail, and jobs whose dependency failed or was cancelled fail too.
   */
  async claim(worker: string, tasks: string[], leaseSeconds: number): Promise<Claim | null> {
    if (!tasks.length) return null;
    const store = await this.#store;
    const token = crypto.randomUUID();
    const taskParams = tasks.map((_, i) => `$${i + 4}`).join(", ");
    const pick = `SELECT j.id FROM kiln_jobs j
      WHERE ((j.status = 'queued' AND j.run_after <= NOW()) OR (j.status = 'running' AND j.lease_expires < NOW() AND j.attempts < j.max_attempts))
        AND j.task IN (${taskParams})
        AND NOT EXISTS (SELECT 1 FROM kiln_job_deps d JOIN kiln_jobs p ON p.id = d.dep_id WHERE d.job_id = j.id AND p.status <> 'completed')
      ORDER BY j.priority DESC, j.created_at, j.id LIMIT 1${store.dialect === "postgres" ? " FOR UPDATE OF j SKIP LOCKED" : ""}`;
    const claimSql = `UPDATE kiln_jobs SET status = 'running', attempts = attempts + 1, lease_token = $1, worker = $2,
        lease_expires = NOW() + $3, started_at = COALESCE(started_at, NOW()), error = NULL
      WHERE id = (${pick}) RETURNING *`;
    const params = [token, worker, leaseSeconds * 1000, ...tasks];
    const sweep = performance.now() - this.#lastSweep > 1000;
    if (sweep) this.#lastSweep = performance.now();
    const rows = await store.transaction(async (tx) => {
      // the sweep settles jobs no claim can take: at most once a second per queue object, and whenever nothing is claimable
      if (sweep) await this.#sweep(tx);
      const claimed = await tx.unsafe(claimSql, params);
      if (!claimed.length && !sweep) await this.#sweep(tx);
      return claimed;
    });
    return rows.length ? { job: toJob(rows[0]), token } : null;
  }

  #lastSweep = -Infinity;

  async #sweep(tx: { unsafe(text: string, params?: unknown[]): Promise<unknown> }): Promise<void> {
    await tx.unsafe(
      `UPDATE kiln_jobs SET status = 'failed', finished_at = NOW(), lease_token = NULL,
         error = COALESCE(error || ' | ', '') || 'its worker stopped answering (lease expired) on attempt ' || attempts || ' of ' || max_attempts
       WHERE status = 'running' AND lease_expires < NOW() AND attempts >= max_attempts`,
    );
    await tx.unsafe(
      `UPDATE kiln_jobs SET status = 'failed', finished_at = NOW(), error = 'a job it depends on failed or was cancelled'
       WHERE status = 'queued' AND EXISTS (SELECT 1 FROM kiln_job_deps d JOIN kiln_jobs p ON p.id = d.dep_id
         WHERE d.job_id = kiln_jobs.id AND p.status IN ('failed', 'cancelled'))`,
    );
  }

  /** Renews the lease and stores progress; says whether the lease is still held. */
  async heartbeat(id: string, token: string, leaseSeconds: number, progress?: TaskProgress | null, logs?: string): Promise<HeartbeatState> {
    const store = await this.#store;
    const r = await store.query(
      `UPDATE kiln_jobs SET lease_expires = NOW() + $3, progress = COALESCE($4, progress), logs = COALESCE($5, logs)
       WHERE id = $1 AND lease_token = $2 AND status = 'running'`,
      [id, token, leaseSeconds * 1000, progress ? JSON.stringify(progress) : null, logs ?? null],
    );
    if (r.count > 0) return "held";
    const rows = await store.query("SELECT status FROM kiln_jobs WHERE id = $1", [id]);
    return rows[0]?.status === "cancelled" ? "cancelled" : "lost";
  }

  /** Stores the result if the lease is still held: true when this call stored it (exactly once). */
  async complete(id: string, token: string, result: unknown, extra: { progress?: TaskProgress | null; logs?: string } = {}): Promise<boolean> {
    const r = await (await this.#store).query(
      `UPDATE kiln_jobs SET status = 'completed', result = $3, progress = COALESCE($4, progress), logs = COALESCE($5, logs),
         finished_at = NOW(), lease_token = NULL, lease_expires = NULL
       WHERE id = $1 AND lease_token = $2 AND status = 'running'`,
      [id, token, JSON.stringify(result ?? null), extra.progress ? JSON.stringify(extra.progress) : null, extra.logs ?? null],
    );
    return r.count > 0;
  }

  /**
   * Records a failed run: queued again after the backoff while attempts remain, else failed for
   * good; `retry: false` (a config that can never run) fails it at once.
   */
  async fail(id: string, token: string, error: string, logs?: string, { retry = true }: { retry?: boolean } = {}): Promise<"retry" | "failed" | "lost"> {
    const r = await (await this.#store).query(
      `UPDATE kiln_jobs SET
         status = CASE WHEN $5 = 1 AND attempts < max_attempts THEN 'queued' ELSE 'failed' END,
         run_after = NOW() + backoff_ms * POWER(2, attempts - 1),
         finished_at = CASE WHEN $5 = 1 AND attempts < max_attempts THEN NULL ELSE NOW() END,
         error = $3, logs = COALESCE($4, logs), lease_token = NULL, lease_expires = NULL
       WHERE id = $1 AND lease_token = $2 AND status = 'running' RETURNING status`,
      [id, token, error, logs ?? null, retry ? 1 : 0],
    );
    if (!r.length) return "lost";
    return r[0].status === "queued" ? "retry" : "failed";
  }

  /** Gives a job back unfinished (worker shutdown): queued again at once, the attempt not counted. */
  async release(id: string, token: string, logs?: string): Promise<boolean> {
    const r = await (await this.#store).query(
      `UPDATE kiln_jobs SET status = 'queued', attempts = attempts - 1, run_after = NOW(), lease_token = NULL, lease_expires = NULL,
         worker = NULL, logs = COALESCE($3, logs)
       WHERE id = $1 AND lease_token = $2 AND status = 'running'`,
      [id, token, logs ?? null],
    );
    return r.count > 0;
  }

  #closed = false;
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await (await this.#store.catch(() => null))?.close();
  }
}
