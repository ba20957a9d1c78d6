// Run folders: the one place that decides where a training command writes (config.json,
// metrics.jsonl, checkpoints/, ...), so every command that writes one (`kiln train`, and the
// fine-tuning commands and queued jobs built on the same Trainer) gets the same guarantees:
// - a new run gets a folder of its own: the default runs/<name>-<time> is created with a
//   non-recursive mkdir of the leaf (two runs started in the same second get -2, -3 ...);
// - an existing non-empty --out is refused unless the run is resumed or --overwrite is given (and
//   --overwrite only replaces something that is a kiln run folder);
// - a lock file (.lock, holding the pid) is held for the run's life, so two processes never write
//   one folder; a lock left by a killed process is taken over;
// - leftovers of crashed saves (.tmp-step-* folders, .*.tmp-* files) are removed when a run starts
//   or resumes (the lock guarantees nobody is writing them);
// - fs failures (ENOENT, ENOTDIR, EROFS, EACCES) are RunFolderErrors naming the folder.

import { mkdir, open, readdir, readFile, rm, rmdir, stat, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { UserError, describeFsError, isUserFsError } from "../util/errors.ts";
import { CHECKPOINTS, latestCheckpointStep } from "./checkpoint.ts";

export class RunFolderError extends UserError {
  override name = "RunFolderError";
}

export interface RunFolderOptions {
  /** the folder (--out, or the run being resumed); default: a new folder under `root` */
  path?: string;
  /** "new": a fresh or empty folder; "resume": an existing run; "overwrite": replace an existing run */
  mode?: "new" | "resume" | "overwrite";
  /** where default folders go (default "runs") */
  root?: string;
  /** the default folder's name before the time stamp, e.g. the data file's stem */
  name?: string;
  /** the clock, for tests */
  now?: Date;
}

export const LOCK = ".lock";
/** what makes a folder a kiln run (for --overwrite): a checkpoints/ folder, or config.json + metrics.jsonl */
export const RUN_MARKERS = [CHECKPOINTS, "metrics.jsonl"];

/** A run folder held for writing. Call release() (or `await using`) when the run ends. */
export class RunFolder {
  /** temporary leftovers of crashed saves removed when the folder was opened */
  readonly cleaned: string[];
  #released = false;

  private constructor(readonly path: string, cleaned: string[]) {
    this.cleaned = cleaned;
  }

  get checkpointDir(): string {
    return join(this.path, CHECKPOINTS);
  }

  /** Creates or claims a run folder (see the file header). Throws RunFolderError for what a user can fix. */
  static async open(options: RunFolderOptions = {}): Promise<RunFolder> {
    const mode = options.mode ?? "new";
    let path = options.path;
    try {
      if (path === undefined) {
        if (mode === "resume") throw new RunFolderError(`nothing to resume: no run folder given`);
        path = await createUnique(options.root ?? "runs", `${options.name ?? "run"}-${timestamp(options.now ?? new Date())}`);
      } else if (mode === "resume") {
        const s = await stat(path).catch(() => null);
        if (!s) throw new RunFolderError(`--resume ${path}: no such run folder`);
        if (!s.isDirectory()) throw new RunFolderError(`--resume ${path}: not a folder`);
      } else {
        await claimExisting(path, mode === "overwrite");
      }
      await lock(path);
    } catch (e) {
      throw asRunFolderError(e, path);
    }
    const cleaned = await cleanStaleFiles(path);
    return new RunFolder(path, cleaned);
  }

  /** Step of the checkpoint latest.json names, or null when the run has none yet. */
  latestStep(): Promise<number | null> {
    return latestCheckpointStep(this.checkpointDir);
  }

  /** Drops the lock; with `removeIfEmpty` (a run that failed before writing anything) also the folder. Idempotent. */
  async release({ removeIfEmpty = false }: { removeIfEmpty?: boolean } = {}): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    await unlink(join(this.path, LOCK)).catch(() => {});
    if (removeIfEmpty) await rmdir(this.path).catch(() => {}); // fails, as it should, unless empty
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}

/** mkdir of the leaf without `recursive`, so exactly one of two racing runs gets each name. */
async function createUnique(root: string, base: string): Promise<string> {
  await mkdir(root, { recursive: true });
  for (let k = 1; ; k++) {
    const path = join(root, k === 1 ? base : `${base}-${k}`);
    try {
      await mkdir(path);
      return path;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
  }
}

/** --out: a new or empty folder is fine; a non-empty one only with --overwrite, and only if it is a run. */
async function claimExisting(path: string, overwrite: boolean): Promise<void> {
  const s = await stat(path).catch((e) => {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  });
  if (!s) {
    await mkdir(dirname(path), { recursive: true });
    await mkdir(path).catch((e) => {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e; // created meanwhile: checked below
    });
    if ((await readdir(path)).length === 0) return;
    throw new RunFolderError(`--out ${path}: another process created it at the same moment`);
  }
  if (!s.isDirectory()) throw new RunFolderError(`--out ${path}: exists and is a file, not a folder`);
  const entries = await readdir(path);
  if (entries.length === 0) return;
  if (!overwrite) {
    const step = await latestCheckpointStep(join(path, CHECKPOINTS)).catch(() => null);
    const what = entries.some((e) => RUN_MARKERS.includes(e)) ? `a run folder${step !== null ? ` (checkpoint at step ${step})` : ""}` : `a folder with ${entries.length} entries`;
    throw new RunFolderError(`--out ${path} already exists and is ${what}: pass --resume ${path} to continue it, --overwrite to replace it, or another --out`);
  }
  if (!entries.some((e) => RUN_MARKERS.includes(e)))
    throw new RunFolderError(`--overwrite: ${path} is not a kiln run folder (no ${RUN_MARKERS.join(" or ")}); refusing to delete it`);
  await checkNotLocked(path);
  for (const e of entries) await rm(join(path, e), { recursive: true, force: true });
}

/** Takes the folder's lock file (exclusive create), taking over one whose process is gone. */
async function lock(path: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const h = await open(join(path, LOCK), "wx");
      await h.writeFile(`${process.pid}\n`);
      await h.close();
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      await checkNotLocked(path);
      await unlink(join(path, LOCK)).catch(() => {}); // stale: its process is gone
    }
  }
  throw new RunFolderError(`${path}: another process took the run folder's lock at the same moment`);
}

async function checkNotLocked(path: string): Promise<void> {
  const holder = await lockHolder(path);
  if (holder?.alive && holder.pid !== process.pid)
    throw new RunFolderError(`${path} is in use by process ${holder.pid} (its ${LOCK} file); wait for it to finish or stop it`);
}

/** The process named by a run folder's lock file, and whether it still runs; null when unlocked. */
export async function lockHolder(path: string): Promise<{ pid: number; alive: boolean } | null> {
  const text = await readFile(join(path, LOCK), "utf8").catch(() => null);
  if (text === null) return null;
  const pid = Number.parseInt(text, 10);
  if (!Number.isInteger(pid) || pid <= 0) return { pid: 0, alive: false };
  return { pid, alive: alive(pid) };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"; // exists, owned by someone else
  }
}

/** Removes temp folders/files of interrupted saves in the run folder and its checkpoints/. */
async function cleanStaleFiles(path: string): Promise<string[]> {
  const removed: string[] = [];
  for (const dir of [path, join(path, CHECKPOINTS)]) {
    const entries = await readdir(dir).catch(() => [] as string[]);
    for (const e of entries) {
      if (/^\.tmp-step-/.test(e) || /^\..+\.tmp-\d+-[0-9a-f]+$/.test(e)) {
        await rm(join(dir, e), { recursive: true, force: true });
        removed.push(join(dir, e));
      }
    }
  }
  return removed;
}

function asRunFolderError(e: unknown, path: string | undefined): unknown {
  if (e instanceof UserError || !isUserFsError(e)) return e;
  const at = (e as NodeJS.ErrnoException).path ?? path;
  return new RunFolderError(`cannot create or write the run folder ${path ?? ""}: ${at}: ${describeFsError(e)}`, { cause: e });
}

function timestamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, "").replace(/\..*$/, "").replace("T", "-");
}
