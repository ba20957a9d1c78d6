import { expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");
const MAIN = join(ROOT, "src/cli/main.ts");
const dir = mkdtempSync(join(tmpdir(), "kiln-cli-config-"));

async function kiln(...args: string[]) {
  const proc = Bun.spawn([process.execPath, MAIN, ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { stdout, stderr, code };
}

test("kiln config migrate, validate --fix, and bad input", async () => {
  writeFileSync(join(dir, "old.json"), JSON.stringify({ n_layer: 2, n_head: 3, n_embd: 32, block_size: 16, max_iters: 10, bias: false, out_dir: "out" }));
  const m = await kiln("config", "migrate", join(dir, "old.json"), join(dir, "new.yaml"));
  expect(m.code).toBe(0);
  expect(m.stdout).toContain("n_embd -> model.embeddingDim");
  expect(m.stdout).toContain("left out (no kiln equivalent): out_dir");
  const v = await kiln("config", "validate", join(dir, "new.yaml"));
  expect(v.code).toBe(1);
  expect(v.stdout).toContain("model.embeddingDim: 32 must be a multiple of model.numHeads (3)");
  const f = await kiln("config", "validate", join(dir, "new.yaml"), "--fix", join(dir, "fixed.json"));
  expect(f.code).toBe(0);
  expect(JSON.parse(readFileSync(join(dir, "fixed.json"), "utf8")).model.embeddingDim).toBe(33);
  const bad = await kiln("config", "validate", join(dir, "missing.json"));
  expect(bad.code).toBe(2);
  expect(bad.stderr.trim().split("\n")).toHaveLength(1);
  expect(bad.stderr).toContain("missing.json: no such file");
});
