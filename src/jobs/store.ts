// Store: the one database behind the job queue and the search studies, through Bun.SQL, which
// speaks sqlite:// and postgres:// with one API. The queries are the same on both; what differs is
// kept here: the clock expression (the database's clock, so workers on machines with skewed
// clocks agree on lease expiry), how a writing transaction starts (SQLite: BEGIN IMMEDIATE, which
// takes the single write lock up front; PostgreSQL: row locks, FOR UPDATE SKIP LOCKED in the
// claim), and the schema's auto-increment spelling.

import type { SQL } from "bun";
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { UserError } from "../util/errors.ts";

export type Dialect = "sqlite" | "postgres";

/** A queue or study URL that cannot be used. */
export class StorageError extends UserError {
  override name = "StorageError";
}

type Row = Record<string, unknown>;
type Runner = { unsafe(query: string, params?: unknown[]): Promise<Row[] & { count: number }> };

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS kiln_jobs (
    id TEXT PRIMARY KEY,
    name TEXT,
    task TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    depends_on TEXT NOT NULL DEFAULT '[]',
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    backoff_ms DOUBLE PRECISION NOT NULL,
    run_after DOUBLE PRECISION NOT NULL,
    lease_token TEXT,
    worker TEXT,
    lease_expires DOUBLE PRECISION,
    progress TEXT,
    result TEXT,
    error TEXT,
    logs TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION
  )`,
  `CREATE INDEX IF NOT EXISTS kiln_jobs_claim ON kiln_jobs (status, priority, created_at)`,
  `CREATE TABLE IF NOT EXISTS kiln_job_deps (
    job_id TEXT NOT NULL,
    dep_id TEXT NOT NULL,
    PRIMARY KEY (job_id, dep_id)
  )`,
  `CREATE INDEX IF NOT EXISTS kiln_job_deps_dep ON kiln_job_deps (dep_id)`,
  `CREATE TABLE IF NOT EXISTS kiln_studies (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    direction TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
  )`,
  `CREATE TABLE IF NOT EXISTS kiln_trials (
    id TEXT PRIMARY KEY,
    study_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    state TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}',
    distributions TEXT NOT NULL DEFAULT '{}',
    value DOUBLE PRECISION,
    intermediate TEXT NOT NULL DEFAULT '{}',
    user_attrs TEXT NOT NULL DEFAULT '{}',
    worker TEXT,
    heartbeat DOUBLE PRECISION,
    started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    UNIQUE (study_id, number)
  )`,
];

const OPEN_SQLITE = new Map<string, Promise<Store>>();

export class Store {
  readonly url: string;
  readonly dialect: Dialect;
  readonly sql: SQL;
  /** SQL for the database's clock, in milliseconds since 1970 */
  readonly now: string;
  #refs = 1;
  /** SQLite: operations run one at a time (a connection's busy wait is synchronous and would block the process's other connections) */
  #chain: Promise<unknown> = Promise.resolve();

  private constructor(url: string, dialect: Dialect, sql: SQL) {
    this.url = url;
    this.dialect = dialect;
    this.sql = sql;
    this.now = dialect === "sqlite" ? "((julianday('now') - 2440587.5) * 86400000.0)" : "(extract(epoch from clock_timestamp()) * 1000.0)";
  }

  /**
   * Opens (and creates the tables of) the database at a sqlite:// or postgres:// URL. Within one
   * process, every open of one SQLite file shares one connection (close() when done with it).
   */
  static async open(url: string): Promise<Store> {
    const dialect = dialectOf(url);
    if (dialect === "sqlite") {
      const path = url.replace(/^sqlite:\/\//, "");
      if (!path) throw new StorageError(`queue URL ${url}: no file (write sqlite://jobs.db or sqlite:///abs/path/jobs.db)`);
      const key = path === ":memory:" ? null : resolve(path);
      const shared = key ? OPEN_SQLITE.get(key) : undefined;
      if (shared) {
        const store = await shared;
        store.#refs++;
        return store;
      }
      const opening = Store.#connect(url, dialect, path);
      if (key) {
        OPEN_SQLITE.set(key, opening);
        opening.catch(() => OPEN_SQLITE.delete(key));
      }
      return opening;
    }
    return Store.#connect(url, dialect, "");
  }

  static async #connect(url: string, dialect: Dialect, path: string): Promise<Store> {
    // Bun.SQL read at run time, not imported: src/index.ts re-exports the queue, and Deno (which
    // runs the rest of kiln) has no "bun" module to import
    const SQL = (globalThis as { Bun?: { SQL: typeof import("bun").SQL } }).Bun?.SQL;
    if (!SQL) throw new StorageError(`${url}: the job queue needs Bun (Bun.SQL); run it with bun`);
    let sql: SQL;
    if (dialect === "sqlite") {
      if (path !== ":memory:") mkdirSync(dirname(resolve(path)), { recursive: true });
      sql = new SQL(`sqlite://${path}`);
    } else {
      sql = new SQL(url, { max: 4 });
    }
    const store = new Store(url, dialect, sql);
    try {
      if (dialect === "sqlite") {
        // WAL: readers never block the writer; busy_timeout: a writer waits for the lock instead of failing
        await sql.unsafe("PRAGMA busy_timeout = 30000");
        await sql.unsafe("PRAGMA journal_mode = WAL");
        await sql.unsafe("PRAGMA synchronous = NORMAL");
      }
      await store.transaction(async (tx) => {
        // two processes creating the tables at once: PostgreSQL needs them serialised
        if (dialect === "postgres") await tx.unsafe("SELECT pg_advisory_xact_lock(727301)");
        for (const statement of SCHEMA) await tx.unsafe(statement);
      });
    } catch (e) {
      await sql.close().catch(() => {});
      if (e instanceof UserError) throw e;
      throw new StorageError(`cannot open ${redact(url)}: ${(e as Error).message}`);
    }
    return store;
  }

  /** One statement with $1, $2 ... parameters. */
  query(text: string, params: unknown[] = []): Promise<Row[] & { count: number }> {
    return this.#serial(() => (this.sql as unknown as Runner).unsafe(this.#dialectText(text), params));
  }

  #serial<T>(f: () => Promise<T>): Promise<T> {
    if (this.dialect !== "sqlite") return f();
    const run = this.#chain.then(f, f);
    this.#chain = run.catch(() => {});
    return run;
  }

  /** NOW() as the database's clock; on SQLite $N as ?N (there $N is a name, bound in order of appearance). */
  #dialectText(text: string): string {
    const t = text.replaceAll("NOW()", this.now);
    return this.dialect === "sqlite" ? t.replace(/\$(\d+)/g, "?$1") : t;
  }

  /** A writing transaction: on SQLite BEGIN IMMEDIATE (the write lock first, so two claimers never read the same snapshot). */
  async transaction<T>(fn: (tx: { unsafe(text: string, params?: unknown[]): Promise<Row[] & { count: number }> }) => Promise<T>): Promise<T> {
    const wrap = (tx: Runner) => fn({ unsafe: (text, params = []) => tx.unsafe(this.#dialectText(text), params) });
    if (this.dialect === "sqlite") return this.#serial(() => (this.sql as unknown as { begin(mode: string, f: (tx: Runner) => Promise<T>): Promise<T> }).begin("IMMEDIATE", wrap));
    return (this.sql as unknown as { begin(f: (tx: Runner) => Promise<T>): Promise<T> }).begin(wrap);
  }

  async close(): Promise<void> {
    if (this.#refs <= 0 || --this.#refs > 0) return;
    if (this.dialect === "sqlite") {
      const key = this.url.replace(/^sqlite:\/\//, "");
      if (key !== ":memory:") OPEN_SQLITE.delete(resolve(key));
      await this.#chain;
    }
    await this.sql.close();
  }
}

export function dialectOf(url: string): Dialect {
  if (/^sqlite:\/\//.test(url)) return "sqlite";
  if (/^postgres(ql)?:\/\//.test(url)) return "postgres";
  throw new StorageError(`storage URL ${JSON.stringify(url)}: expected sqlite://<file> or postgres://user@host/db`);
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, "//$1:***@");
}

/** JSON text of a column (null stays null). */
export function parseJson<T>(text: unknown): T | null {
  return typeof text === "string" ? (JSON.parse(text) as T) : null;
}
