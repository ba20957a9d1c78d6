// `kiln train` as a user runs it: a short run writes the run folder and a sample; bad flags and
// configs name the field and value; a missing data file names the path; Ctrl-C saves a
// checkpoint and exits cleanly; --resume continues the run.

import { describe, expect, test } from "bun:test";
import { mkdtemp, readFile, readdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");
const MAIN = join(ROOT, "src", "cli", "main.ts");
const TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n".repeat(60);
const SMALL = ["--backend", "wasm", "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "4", "--eval-iters", "2"];

async function kiln(args: string[], opts: { signalAfter?: RegExp } = {}) {
  const proc = Bun.spawn([process.execPath, MAIN, ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe", env: { ...process.env, KILN_BACKEND: "wasm" } });
  let stdout = "";
  const reader = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stdout as unknown as AsyncIterable<Uint8Array>) {
      stdout += decoder.decode(chunk);
      if (opts.signalAfter?.test(stdout)) {
        proc.kill("SIGINT");
        opts.signalAfter = undefined;
      }
    }
  })();
  const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
  await reader;
  return { code, stdout, stderr };
}

async function dataFile(): Promise<{ dir: string; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), "kiln-cli-"));
  const file = join(dir, "text.txt");
  await writeFile(file, TEXT);
  return { dir, file };
}

describe("kiln train", () => {
  test("a short run writes config, metrics, plot, checkpoint, sample", async () => {
    const { dir, file } = await dataFile();
    const out = join(dir, "run");
    const r = await kiln(["train", "--data", file, "--out", out, "--iters", "8", "--eval-interval", "4", "--log-interval", "2", "--sample-tokens", "20", ...SMALL]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("val loss");
    expect(r.stdout).toContain("--- sample (20 characters) ---");
    const files = await readdir(out);
    expect(files).toEqual(expect.arrayContaining(["config.json", "tokenizer.json", "metrics.jsonl", "loss.svg", "checkpoints", "sample.txt"]));
    const lines = (await readFile(join(out, "metrics.jsonl"), "utf8")).trim().split("\n").map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ step: 1, loss: expect.any(Number) });
    expect(lines.some((l) => typeof l.val_loss === "number")).toBe(true);
    // not a TTY: plain progress lines
    expect(r.stdout).toMatch(/step 2\/8 {2}loss \d+\.\d+/);
  });

  test("a bad value names the field and the value", async () => {
    const r = await kiln(["train", "--lr=-1", "--iters", "1"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("train.lr");
    expect(r.stderr).toContain("-1");
    const r2 = await kiln(["train", "--iters", "abc"]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain('--iters must be a number (got "abc")');
  });

  test("a bad config file field is reported with its path", async () => {
    const { dir } = await dataFile();
    const cfg = join(dir, "cfg.yaml");
    await writeFile(cfg, "model:\n  nEmbd: 30\n  nHead: 4\ntrain:\n  batchSize: 0\n");
    const r = await kiln(["train", "--config", cfg]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("train.batchSize");
    expect(r.stderr).toContain("model.nEmbd: nEmbd must be a multiple of nHead");
  });

  test("a missing data file says which path", async () => {
    const r = await kiln(["train", "--data", "/nonexistent/tiny.txt"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--data /nonexistent/tiny.txt not found");
  });

  test("--help and unknown commands", async () => {
    const help = await kiln(["train", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("--resume <dir>");
    const bad = await kiln(["fly"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('unknown command "fly"');
  });

  test("Ctrl-C saves a checkpoint and exits cleanly; --resume finishes the run", async () => {
    const { dir, file } = await dataFile();
    const out = join(dir, "run");
    const r = await kiln(["train", "--data", file, "--out", out, "--iters", "100000", "--log-interval", "1", "--sample-tokens", "0", ...SMALL], { signalAfter: /step 3\// });
    expect(r.code).toBe(130);
    expect(r.stdout).toContain("checkpoint saved");
    const latest = JSON.parse(await readFile(join(out, "checkpoints", "latest.json"), "utf8"));
    expect(latest.step).toBeGreaterThanOrEqual(3);
    const resumed = await kiln(["train", "--resume", out, "--iters", String(latest.step + 2), "--sample-tokens", "0"]);
    expect(resumed.stderr).toBe("");
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toContain("(resuming)");
    expect(resumed.stdout).toContain(`done: ${latest.step + 2} steps`);
  }, 60_000);
});
