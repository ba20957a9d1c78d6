// Atomic file writes: write a temp file in the target's directory, fsync it, rename it over the
// target, fsync the directory. A reader sees the old file or the new one, never a torn mix, and a
// crash or an error before the rename leaves the old file as it was (the temp file is removed).
// Not a lock: two writers racing on one path both succeed and the last rename wins.
// Reference: rename(2) atomicity within one filesystem; the write-fsync-rename-fsync(dir) pattern.

import { open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** Bytes to write: a string (written as UTF-8), one typed array or view, or chunks written in order
 *  (a list, or an async iterable that produces each chunk just before it is written). */
export type AtomicData = string | ArrayBufferView | Iterable<ArrayBufferView> | AsyncIterable<ArrayBufferView>;

export interface AtomicWriteOptions {
  /** File mode for a newly created file (default 0o644). */
  mode?: number;
  /** Called after the temp file is written and synced, before the rename; a throw aborts the write. For tests. */
  beforeRename?: (tempPath: string) => void | Promise<void>;
}

/** Writes `data` to `path` atomically (temp file + fsync + rename + fsync of the directory). */
export async function writeFileAtomic(path: string, data: AtomicData, options: AtomicWriteOptions = {}): Promise<void> {
  const dir = dirname(path);
  const tempPath = join(dir, `.${basename(path)}.tmp-${process.pid}-${randomSuffix()}`);
  const handle = await open(tempPath, "wx", options.mode ?? 0o644);
  let renamed = false;
  try {
    try {
      for await (const chunk of chunksOf(data)) await writeAll(handle, chunk);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (options.beforeRename) await options.beforeRename(tempPath);
    await rename(tempPath, path);
    renamed = true;
  } finally {
    if (!renamed) await unlink(tempPath).catch(() => {});
  }
  await syncDirectory(dir);
}

/** Writes `value` as JSON (2-space indent, trailing newline) to `path` atomically. */
export async function writeJsonAtomic(path: string, value: unknown, options: AtomicWriteOptions = {}): Promise<void> {
  const text = JSON.stringify(value, null, 2);
  if (text === undefined) throw new TypeError(`writeJsonAtomic: ${path}: value is not JSON-serialisable`);
  await writeFileAtomic(path, text + "\n", options);
}

// ---------------------------------------------------------------------------------------------

async function* chunksOf(data: AtomicData): AsyncIterable<Uint8Array> {
  if (typeof data === "string") {
    yield new TextEncoder().encode(data);
  } else if (ArrayBuffer.isView(data)) {
    yield new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } else {
    for await (const chunk of data) yield new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
}

type Handle = Awaited<ReturnType<typeof open>>;

async function writeAll(handle: Handle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.byteLength - done);
    if (bytesWritten <= 0) throw new Error("writeFileAtomic: write made no progress");
    done += bytesWritten;
  }
}

/** Makes the rename durable. Some platforms cannot open or fsync a directory; there it is skipped. */
async function syncDirectory(dir: string): Promise<void> {
  let handle: Handle | undefined;
  try {
    handle = await open(dir, "r");
    await handle.sync();
  } catch {
    // EISDIR / EPERM / EINVAL on platforms without directory fsync: the rename itself stands.
  } finally {
    await handle?.close().catch(() => {});
  }
}

function randomSuffix(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
