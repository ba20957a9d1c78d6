// The stores every queue/study test runs against: SQLite (a temp file) and PostgreSQL (a throwaway
// cluster, one fresh database per call). Without PostgreSQL installed only SQLite runs, unless
// KILN_TEST_POSTGRES=1 makes that a failure.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SQL } from "bun";
import { startPostgres, type PgCluster } from "./postgres.ts";

export interface StoreKind {
  name: "sqlite" | "postgres";
  /** a URL to an empty database */
  fresh(): Promise<string>;
}

let n = 0;
export function openStores(): { kinds: StoreKind[]; close(): void } {
  const dir = mkdtempSync(join(tmpdir(), "kiln-jobs-"));
  const pg: PgCluster | null = startPostgres();
  const kinds: StoreKind[] = [{ name: "sqlite", fresh: async () => `sqlite://${join(dir, `q${++n}.db`)}` }];
  if (pg) {
    kinds.push({
      name: "postgres",
      fresh: async () => {
        const db = `kiln_t${process.pid}_${++n}`;
        const admin = new SQL(pg.url, { max: 1 });
        await admin.unsafe(`CREATE DATABASE ${db}`);
        await admin.close();
        return pg.url.replace(/\/postgres$/, `/${db}`);
      },
    });
  }
  return {
    kinds,
    close() {
      pg?.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
