// `kiln sft`, `kiln dpo`, `kiln pipeline run` and `kiln generate --adapter` as a user runs them on
// the tiny Qwen2 fixture: a run folder with metrics.jsonl, loss.svg and a PEFT adapter; DPO from that
// adapter; bad keys, flags and data rows named in one line with exit code 2.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");
const MAIN = join(ROOT, "src", "cli", "main.ts");
const QWEN = join(ROOT, "tests", "fixtures", "hf", "qwen2");
const tmp = await mkdtemp(join(tmpdir(), "kiln-cli-ft-"));
afterAll(() => rm(tmp, { recursive: true, force: true }));

async function kiln(args: string[]) {
  const proc = Bun.spawn([process.execPath, MAIN, ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe", env: { ...process.env, KILN_BACKEND: "wasm" } });
  const [code, stdout, stderr] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  return { code, stdout, stderr };
}

const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";

describe("kiln sft / dpo / pipeline", () => {
  test("sft writes a run folder and an adapter; dpo continues it; generate --adapter applies it", async () => {
    const data = join(tmp, "train.jsonl");
    await writeFile(data, jsonl([{ prompt: "The capital of France is", completion: " Paris." }, { prompt: "The capital of Italy is", completion: " Rome." }]));
    const out = join(tmp, "sft");
    const sft = await kiln(["sft", "--model", QWEN, "--data", data, "--out", out, "--max-steps", "4", "--learning-rate", "1e-2", "--target-modules", "q_proj,v_proj,o_proj", "--logging-steps", "2"]);
    expect(sft.stderr).not.toContain("Error");
    expect(sft.code).toBe(0);
    expect(sft.stdout).toMatch(/^4 steps in [\d.]+ s, final loss [\d.]+/m);
    const metrics = (await readFile(join(out, "metrics.jsonl"), "utf8")).trim().split("\n").map((l) => JSON.parse(l));
    expect(metrics.filter((m) => typeof m.loss === "number")).toHaveLength(4);
    expect((await stat(join(out, "loss.svg"))).size).toBeGreaterThan(0);
    const config = JSON.parse(await readFile(join(out, "adapter", "adapter_config.json"), "utf8"));
    expect(config.target_modules).toEqual(["o_proj", "q_proj", "v_proj"]);

    const pairs = join(tmp, "pairs.jsonl");
    await writeFile(pairs, jsonl([{ prompt: "The capital of France is", chosen: " Paris.", rejected: " Rome." }]));
    const dpo = await kiln(["dpo", "--model", QWEN, "--adapter", join(out, "adapter"), "--data", pairs, "--out", join(tmp, "dpo"), "--max-steps", "2", "--learning-rate", "1e-3"]);
    expect(dpo.code).toBe(0);
    expect(dpo.stdout).toMatch(/rewards\/accuracies [\d.]+, rewards\/margins -?[\d.]+/);

    const base = await kiln(["generate", "--model", QWEN, "--prompt", "The capital of", "--max-new-tokens", "6"]);
    const tuned = await kiln(["generate", "--model", QWEN, "--prompt", "The capital of", "--max-new-tokens", "6", "--adapter", join(tmp, "dpo", "adapter")]);
    expect(base.code).toBe(0);
    expect(tuned.code).toBe(0);
    expect(tuned.stdout).not.toBe(base.stdout);
  });

  test("bad keys, missing flags and bad rows: one line, exit code 2", async () => {
    const data = join(tmp, "bad.jsonl");
    await writeFile(data, jsonl([{ prompt: "a", completion: " b" }, { prompt: "a" }]));
    const unknown = await kiln(["sft", "--model", QWEN, "--data", data, "--lerning-rate", "3"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown key "lerning_rate" (did you mean "learningRate"?)');
    const missing = await kiln(["dpo", "--data", data]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("--model <dir> is required");
    const row = await kiln(["sft", "--model", QWEN, "--data", data, "--out", join(tmp, "bad-run")]);
    expect(row.code).toBe(2);
    expect(row.stderr).toContain(`${data}:2: missing field "completion"`);
    expect(row.stderr).not.toMatch(/\n\s+at /); // no stack trace
    const pipe = await kiln(["pipeline", "run", join(tmp, "nope.yaml")]);
    expect(pipe.code).toBe(2);
    expect(pipe.stderr).toContain("config file not found");
  });

  test("pipeline run: topics from a curriculum folder named in the YAML", async () => {
    const cur = join(tmp, "curriculum", "01-capitals");
    await mkdir(cur, { recursive: true });
    await writeFile(join(cur, "sft.jsonl"), jsonl([{ prompt: "Of France:", completion: " Paris." }]));
    await writeFile(join(cur, "dpo.jsonl"), jsonl([{ prompt: "Of France:", chosen: " Paris.", rejected: " Rome." }]));
    const yaml = join(tmp, "pipeline.yaml");
    await writeFile(yaml, [
      "backend: { type: wasm, device: auto }",
      `model: { name: ${QWEN} }`,
      "sft: { epochs_per_topic: 2, learning_rate: 0.01, batch_size: 1, progress: false }",
      "dpo: { steps_per_topic: 2, beta: 0.1, progress: false }",
      "curriculum: curriculum",
      "output_dir: pipeline-run",
      "progress: false",
    ].join("\n"));
    const r = await kiln(["pipeline", "run", yaml]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^01-capitals: sft loss [\d.]+, dpo loss [\d.]+, accuracy [\d.]+ -> .*pipeline-run\/topics\/01-capitals\/adapter$/m);
    const again = await kiln(["pipeline", "run", yaml]);
    expect(again.stdout).toMatch(/^01-capitals: done earlier/m);
  });
});
