// `kiln runs --root <dir>` lists the run folders there — kiln's own files mark them (checkpoints/,
// metrics.jsonl, a .lock) — and counts the other folders (a model folder with its config.json, a data
// folder) as skipped instead of listing them as "empty" runs.

import { afterAll, expect, test } from "bun:test";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { summarize } from "../../src/cli/runs.ts";

const ROOT = join(import.meta.dir, "..", "..");
const MAIN = join(ROOT, "src", "cli", "main.ts");
const tmp = await mkdtemp(join(tmpdir(), "kiln-runs-"));
afterAll(() => rm(tmp, { recursive: true, force: true }));

async function kiln(args: string[]) {
  const proc = Bun.spawn([process.execPath, MAIN, ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const [code, stdout, stderr] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  return { code, stdout, stderr };
}

test("kiln runs --root lists only run folders and says how many others it skipped", async () => {
  const root = join(tmp, "runs");
  const run = join(root, "shakespeare-1");
  await mkdir(run, { recursive: true });
  await writeFile(join(run, "config.json"), JSON.stringify({ train: { iters: 10 } }));
  await writeFile(join(run, "metrics.jsonl"), JSON.stringify({ step: 10, loss: 1.5, val_loss: 1.7, final: true }) + "\n");
  const model = join(root, "qwen-hf");
  await mkdir(model);
  await writeFile(join(model, "config.json"), JSON.stringify({ model_type: "qwen2" }));
  await writeFile(join(model, "model.safetensors"), "");
  await mkdir(join(root, "data"));
  await writeFile(join(root, "notes.txt"), "not a folder");

  expect(await summarize(model)).toBeNull();
  expect((await summarize(run))!.status).toBe("finished");

  const r = await kiln(["runs", "--root", root]);
  expect(r.code).toBe(0);
  const lines = r.stdout.trim().split("\n");
  expect(lines[0]).toMatch(/^run\s+status/);
  expect(lines.filter((l) => l.startsWith(root))).toEqual([expect.stringMatching(/shakespeare-1\s+finished\s+-\s+1\.5000\s+1\.7000/)]);
  expect(r.stdout).not.toContain("qwen-hf  ");
  expect(lines.at(-1)).toBe(`(2 other folders in ${root}/ skipped: not kiln runs: data, qwen-hf)`);
  const json = await kiln(["runs", "--root", root, "--json"]);
  expect(JSON.parse(json.stdout).map((x: { path: string }) => x.path)).toEqual([run]);
  expect(json.stderr).toContain("2 other folders");

  const bad = await kiln(["runs", "--bogus"]);
  expect(bad.code).toBe(2);
  expect(bad.stderr.trim().split("\n")).toEqual([expect.stringMatching(/^kiln runs: Unknown option '--bogus'/)]);
});
