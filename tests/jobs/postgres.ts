// A throwaway PostgreSQL cluster for the tests: initdb into a temp dir, postgres on a loopback port
// with a unix socket in that dir, trust auth, torn down by stop(). As root, the server runs as the
// `postgres` user (the Debian package creates it; PostgreSQL refuses to run as root). Returns null
// when PostgreSQL is not installed (KILN_TEST_POSTGRES=1 makes that a failure instead).

import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface PgCluster {
  url: string;
  stop(): void;
}

function binDir(): string | null {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return null;
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, "bin", "initdb"))).sort((a, b) => Number(b) - Number(a));
  return versions.length ? join(root, versions[0], "bin") : null;
}

function run(cmd: string[], asPostgres: boolean): void {
  const argv = asPostgres ? ["runuser", "-u", "postgres", "--", ...cmd] : cmd;
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed (${r.exitCode}): ${r.stderr.toString()}${r.stdout.toString()}`);
}

export function startPostgres(): PgCluster | null {
  const bin = binDir();
  if (!bin) {
    if (process.env.KILN_TEST_POSTGRES === "1") throw new Error("PostgreSQL is not installed (apt-get install postgresql)");
    return null;
  }
  const asPostgres = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), "kiln-pg-"));
  chmodSync(dir, 0o777);
  const data = join(dir, "data");
  if (asPostgres) run(["chown", "postgres", dir], false);
  run([join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"], asPostgres);
  const port = 20000 + Math.floor(Math.random() * 20000);
  const opts = `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c max_connections=200`;
  run([join(bin, "pg_ctl"), "-D", data, "-o", opts, "-l", join(dir, "log"), "-w", "-t", "30", "start"], asPostgres);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop() {
      try {
        run([join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "stop"], asPostgres);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
