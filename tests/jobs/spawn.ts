// Worker processes for the fault tests: `kiln worker` started with the test tasks, killed with
// SIGKILL or stopped with SIGTERM.

import type { Subprocess } from "bun";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");

export function spawnWorker(url: string, artifacts: string, extra: string[] = []): Subprocess {
  return Bun.spawn(
    [process.execPath, join(ROOT, "src/cli/main.ts"), "worker", "--queue", url, "--artifacts", artifacts,
      "--import", join(import.meta.dir, "fixtures/tasks.ts"), ...extra],
    { cwd: ROOT, stdout: "ignore", stderr: "pipe", env: { ...process.env, KILN_BACKEND: "wasm" } },
  );
}

export async function until<T>(f: () => Promise<T>, ok: (v: T) => boolean, seconds = 60): Promise<T> {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`condition not met in ${seconds} s (last: ${JSON.stringify(v)?.slice(0, 300)})`);
    await Bun.sleep(10);
  }
}
