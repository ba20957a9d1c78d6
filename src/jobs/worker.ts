// Worker: claims jobs from a queue and runs their tasks, up to `concurrency` at once. While a job
// runs, a heartbeat renews its lease and stores its progress and log tail; the heartbeat also
// learns when the job was cancelled or its lease lost, and aborts the task's signal (trainers stop
// at the next step and checkpoint). stop() (the CLI calls it on SIGTERM) stops claiming, aborts the
// running jobs, waits for them to checkpoint, and hands them back to the queue for another worker.

import { mkdir } from "node:fs/promises";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { DataFileError } from "../data/text_file.ts";
import { JobQueue, type Claim } from "./queue.ts";
import { getTask, JobConfigError, parseJobConfig, resolveRefs, taskNames, type TaskContext, type TaskProgress } from "./tasks.ts";

export interface WorkerOptions {
  /** a queue or its URL */
  queue: JobQueue | string;
  /** jobs run at once (default 1) */
  concurrency?: number;
  /** root of every job's folder (checkpoints, run folders): a path all workers see (default ./artifacts) */
  artifacts?: string;
  /** the backend for tasks whose config leaves it to the worker */
  backend?: string;
  /** a lease lasts this long unless renewed (default 30 s); a dead worker's job is taken over after it */
  leaseSeconds?: number;
  /** heartbeat period (default: a sixth of the lease) */
  heartbeatSeconds?: number;
  /** wait between claims when the queue has nothing to run (default 1 s) */
  pollSeconds?: number;
  /** only these tasks (default: every task registered in this process) */
  tasks?: string[];
  /** return from run() when nothing is runnable and nothing is running */
  exitWhenIdle?: boolean;
  /** return from run() after this many jobs */
  maxJobs?: number;
  /** seconds stop() waits for running jobs to checkpoint before handing them back (default 30) */
  shutdownGraceSeconds?: number;
  /** a name for this worker in the queue (default host:pid:n) */
  id?: string;
  log?: (line: string) => void;
}

const LOG_TAIL = 200;
let workerCount = 0;

interface Running {
  claim: Claim;
  abort: AbortController;
  done: Promise<void>;
}

export class Worker {
  readonly id: string;
  readonly queue: JobQueue;
  readonly #ownQueue: boolean;
  readonly #o: Required<Omit<WorkerOptions, "queue" | "backend" | "tasks" | "maxJobs" | "id" | "log">> & Pick<WorkerOptions, "backend" | "tasks" | "maxJobs">;
  readonly #log: (line: string) => void;
  readonly #running = new Map<string, Running>();
  #stopping = false;
  #wake: (() => void) | null = null;
  #started = 0;
  /** jobs this worker finished, by outcome */
  readonly counts = { completed: 0, failed: 0, retried: 0, cancelled: 0, lost: 0, released: 0 };

  constructor(options: WorkerOptions) {
    this.queue = typeof options.queue === "string" ? new JobQueue(options.queue) : options.queue;
    this.#ownQueue = typeof options.queue === "string";
    const lease = options.leaseSeconds ?? 30;
    this.#o = {
      concurrency: options.concurrency ?? 1, artifacts: resolve(options.artifacts ?? "artifacts"), backend: options.backend,
      leaseSeconds: lease, heartbeatSeconds: options.heartbeatSeconds ?? lease / 6, pollSeconds: options.pollSeconds ?? 1,
      tasks: options.tasks, exitWhenIdle: options.exitWhenIdle ?? false, maxJobs: options.maxJobs,
      shutdownGraceSeconds: options.shutdownGraceSeconds ?? 30,
    };
    if (!(this.#o.concurrency >= 1)) throw new Error(`[worker] concurrency must be >= 1 (got ${this.#o.concurrency})`);
    if (!(this.#o.heartbeatSeconds < lease)) throw new Error(`[worker] the heartbeat (${this.#o.heartbeatSeconds} s) must be shorter than the lease (${lease} s)`);
    this.id = options.id ?? `${hostname()}:${process.pid}:${++workerCount}`;
    this.#log = options.log ?? ((line) => console.log(line));
  }

  /** Claims and runs jobs until stop() (or, with exitWhenIdle / maxJobs, until there is nothing left). */
  async run(): Promise<void> {
    const tasks = this.#o.tasks ?? taskNames();
    while (!this.#stopping) {
      if (this.#o.maxJobs !== undefined && this.#started >= this.#o.maxJobs) break;
      if (this.#running.size >= this.#o.concurrency) {
        await this.#sleep(this.#o.pollSeconds);
        continue;
      }
      let claim: Claim | null = null;
      try {
        claim = await this.queue.claim(this.id, tasks, this.#o.leaseSeconds);
      } catch (e) {
        this.#log(`worker ${this.id}: claim failed: ${(e as Error).message}; retrying`);
      }
      if (this.#stopping) {
        if (claim) await this.queue.release(claim.job.id, claim.token).catch(() => {});
        break;
      }
      if (claim) {
        this.#start(claim);
        continue;
      }
      if (this.#o.exitWhenIdle && this.#running.size === 0) break;
      await this.#sleep(this.#o.pollSeconds);
    }
    await Promise.all([...this.#running.values()].map((r) => r.done));
    if (this.#ownQueue) await this.queue.close();
  }

  /** Stops claiming, aborts running jobs (they checkpoint), waits up to the grace period, and hands them back. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#wake?.();
    for (const r of this.#running.values()) r.abort.abort("shutdown");
    const all = Promise.all([...this.#running.values()].map((r) => r.done));
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([all, new Promise((res) => (timer = setTimeout(res, this.#o.shutdownGraceSeconds * 1000)))]);
    clearTimeout(timer);
    // jobs that did not stop in time: handed back now (a late result from them is refused by the lease check)
    for (const r of this.#running.values()) {
      if (await this.queue.release(r.claim.job.id, r.claim.token).catch(() => false)) this.counts.released++;
    }
  }

  get running(): number {
    return this.#running.size;
  }

  #sleep(seconds: number): Promise<void> {
    return new Promise((res) => {
      const t = setTimeout(() => ((this.#wake = null), res()), seconds * 1000);
      this.#wake = () => (clearTimeout(t), (this.#wake = null), res());
    });
  }

  #start(claim: Claim): void {
    this.#started++;
    const abort = new AbortController();
    const entry: Running = { claim, abort, done: Promise.resolve() };
    this.#running.set(claim.job.id, entry);
    entry.done = this.#execute(claim, abort).finally(() => {
      this.#running.delete(claim.job.id);
      this.#wake?.();
    });
  }

  async #execute({ job, token }: Claim, abort: AbortController): Promise<void> {
    const q = this.queue;
    const lines: string[] = [];
    const logs = () => lines.slice(-LOG_TAIL).join("\n");
    let progress: TaskProgress | null = null;
    let dirty = false;
    const log = (message: string) => {
      lines.push(`${new Date().toISOString()} ${message}`);
      dirty = true;
    };
    log(`attempt ${job.attempts} of ${job.maxAttempts} on ${this.id}`);
    this.#log(`worker ${this.id}: job ${job.id} (${job.task}) attempt ${job.attempts}`);
    // the heartbeat: renew the lease, store progress, learn of cancellation or a lost lease
    let beating = true;
    let stopBeat = () => {};
    const beat = async () => {
      while (beating) {
        await new Promise<void>((r) => {
          const t = setTimeout(r, this.#o.heartbeatSeconds * 1000);
          stopBeat = () => (clearTimeout(t), r());
        });
        if (!beating) break;
        try {
          const state = await q.heartbeat(job.id, token, this.#o.leaseSeconds, progress, dirty ? logs() : undefined);
          dirty = false;
          if (state !== "held") {
            abort.abort(state === "cancelled" ? "cancelled" : "lost");
            break;
          }
        } catch (e) {
          this.#log(`worker ${this.id}: heartbeat for ${job.id} failed: ${(e as Error).message}`);
        }
      }
    };
    const heartbeat = beat();
    let outcome: { ok: true; value: unknown } | { ok: false; error: unknown };
    try {
      const dir = join(this.#o.artifacts, job.id);
      await mkdir(dir, { recursive: true });
      const resolved = await resolveRefs(job.config, async (id) => {
        const j = await q.getJob(id).catch(() => null);
        return j && { status: j.status, result: j.result };
      });
      const config = parseJobConfig(job.task, resolved);
      const ctx: TaskContext = {
        jobId: job.id, attempt: job.attempts, signal: abort.signal, dir, backend: this.#o.backend, queueUrl: q.url,
        progress: (p) => void (progress = { ...p, at: Date.now() }), log,
      };
      const value = await getTask(job.task).run(config, ctx);
      JSON.stringify(value ?? null); // a result must be storable
      outcome = { ok: true, value };
    } catch (e) {
      outcome = { ok: false, error: e };
    } finally {
      beating = false;
      stopBeat();
    }
    await heartbeat.catch(() => {});
    const reason = abort.signal.aborted ? String(abort.signal.reason) : null;
    if (reason === "shutdown") {
      log("handed back: the worker is shutting down");
      if (await q.release(job.id, token, logs())) this.counts.released++;
      this.#log(`worker ${this.id}: job ${job.id} handed back (shutdown)`);
      return;
    }
    if (reason === "cancelled" || reason === "lost") {
      this.counts[reason === "cancelled" ? "cancelled" : "lost"]++;
      this.#log(`worker ${this.id}: job ${job.id} stopped: ${reason === "cancelled" ? "cancelled" : "its lease was lost (another worker may hold it)"}`);
      return;
    }
    if (outcome.ok) {
      const stored = await q.complete(job.id, token, outcome.value, { progress, logs: logs() });
      this.counts[stored ? "completed" : "lost"]++;
      this.#log(`worker ${this.id}: job ${job.id} ${stored ? "completed" : "finished, but its lease was lost: result not stored"}`);
      return;
    }
    const err = outcome.error as Error;
    const message = err instanceof Error ? err.message : String(err);
    log(`error: ${err instanceof Error && err.stack ? err.stack : message}`);
    // a config that cannot be resolved or parsed, or a data file that is missing or not text, fails
    // the same way on every attempt: no retry
    const state = await q.fail(job.id, token, message, logs(), { retry: !(err instanceof JobConfigError || err instanceof DataFileError) });
    if (state === "retry") this.counts.retried++;
    else if (state === "failed") this.counts.failed++;
    else this.counts.lost++;
    this.#log(`worker ${this.id}: job ${job.id} ${state === "retry" ? "failed, will retry" : state === "failed" ? "failed for good" : "failed after losing its lease"}: ${message}`);
  }
}
