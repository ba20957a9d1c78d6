// `kiln pipeline run` stopped mid-topic — SIGTERM (checkpoints where it stops) and kill -9 (the last
// save_steps checkpoint) — during a topic's SFT and during its DPO: running it again continues that
// phase from its checkpoint without redoing finished topics or a finished SFT phase, and ends with
// exactly the losses, evaluation and adapter of an uninterrupted run.

import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");
const MAIN = join(ROOT, "src", "cli", "main.ts");
const QWEN = join(ROOT, "tests", "fixtures", "hf", "qwen2");
const tmp = await mkdtemp(join(tmpdir(), "kiln-pipeline-resume-"));
afterAll(() => process.env.KEEP || rm(tmp, { recursive: true, force: true }));

const TOPICS = ["01-capitals", "02-rivers"];
const SFT_STEPS = 6; // 4 rows, batch 2, 3 epochs
const DPO_STEPS = 4;
const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";

async function curriculum(): Promise<void> {
  const facts = { "01-capitals": ["France", "Paris", "Italy", "Rome", "Spain", "Madrid", "Peru", "Lima"], "02-rivers": ["France", "Seine", "Italy", "Po", "Egypt", "Nile", "Spain", "Ebro"] };
  for (const [name, f] of Object.entries(facts)) {
    const dir = join(tmp, "curriculum", name);
    await mkdir(dir, { recursive: true });
    const pairs = [0, 2, 4, 6].map((i) => [f[i], f[i + 1]]);
    await writeFile(join(dir, "sft.jsonl"), jsonl(pairs.map(([a, x]) => ({ prompt: `Of ${a}:`, completion: ` ${x}.` }))));
    await writeFile(join(dir, "dpo.jsonl"), jsonl(pairs.slice(0, 2).map(([a, x], i) => ({ prompt: `Of ${a}:`, chosen: ` ${x}.`, rejected: ` ${pairs[3 - i][1]}.` }))));
    await writeFile(join(dir, "eval.jsonl"), jsonl([{ prompt: `Of ${f[0]}:`, completion: ` ${f[1]}.` }, { prompt: `Of ${f[2]}:`, chosen: ` ${f[3]}.`, rejected: ` ${f[1]}.` }]));
  }
}

/** A pipeline YAML writing to `out`: checkpoints every step, dropout on (its RNG must resume too). */
async function config(out: string): Promise<string> {
  const path = join(tmp, `${out}.yaml`);
  await writeFile(path, [
    "backend: { type: wasm }",
    `model: { name: ${QWEN} }`,
    "sft: { epochs_per_topic: 3, learning_rate: 0.01, batch_size: 2, lora_r: 4, lora_dropout: 0.1, save_steps: 1, logging_steps: 1, progress: false }",
    `dpo: { steps_per_topic: ${DPO_STEPS}, learning_rate: 0.005, batch_size: 1, beta: 0.1, save_steps: 1, logging_steps: 1, progress: false }`,
    "curriculum: curriculum",
    `output_dir: ${out}`,
  ].join("\n"));
  return path;
}

interface Kill {
  topic: string;
  phase: "sft" | "dpo";
  /** stop once this phase's newest checkpoint is at least this step */
  afterStep: number;
  signal: "SIGTERM" | "SIGKILL";
}

/** Runs the pipeline; with `kill`, signals it once the phase's checkpoint of `afterStep` exists. */
async function pipeline(yaml: string, out: string, kill?: Kill): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([process.execPath, MAIN, "pipeline", "run", yaml], { cwd: ROOT, stdout: "pipe", stderr: "pipe", env: { ...process.env, KILN_BACKEND: "wasm" } });
  let watching = kill !== undefined;
  const watch = (async () => {
    while (watching) {
      if (((await checkpointStep(out, kill!.topic, kill!.phase)) ?? -1) >= kill!.afterStep) {
        proc.kill(kill!.signal);
        return;
      }
      await Bun.sleep(2);
    }
  })();
  const [code, stdout, stderr] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  watching = false;
  await watch;
  return { code, stdout, stderr };
}

async function checkpointStep(out: string, topic: string, phase: string): Promise<number | null> {
  const text = await readFile(join(tmp, out, "topics", topic, phase, "checkpoints", "latest.json"), "utf8").catch(() => null);
  try {
    return text === null ? null : (JSON.parse(text).step as number);
  } catch {
    return null; // caught mid-write
  }
}

const losses = async (out: string, topic: string, phase: string) =>
  (await readFile(join(tmp, out, "topics", topic, phase, "metrics.jsonl"), "utf8")).trim().split("\n").map((l) => JSON.parse(l)).filter((r) => typeof r.loss === "number").map((r) => [r.step, r.loss]);
const sha = async (path: string) => createHash("sha256").update(await readFile(path)).digest("hex");
const state = async (out: string) => JSON.parse(await readFile(join(tmp, out, "pipeline_state.json"), "utf8").catch(() => '{"results":[]}'));

/** Everything an uninterrupted run leaves that a resumed one must reproduce. */
async function outcome(out: string) {
  const s = await state(out);
  const o: Record<string, unknown> = { evals: s.results.map((r: Record<string, unknown>) => [r.topic, r.eval_loss, r.preference_accuracy]) };
  for (const t of TOPICS) {
    o[`${t}/sft`] = await losses(out, t, "sft");
    o[`${t}/dpo`] = await losses(out, t, "dpo");
    o[`${t}/adapter`] = await sha(join(tmp, out, "topics", t, "adapter", "adapter_model.safetensors"));
  }
  return o;
}

describe("kiln pipeline run: resume mid-topic", () => {
  test("SIGTERM or kill -9 in a topic's SFT or DPO: the rerun continues from the checkpoint and matches an uninterrupted run", async () => {
    await curriculum();
    const ref = await pipeline(await config("reference"), "reference");
    expect(ref.stderr).toBe("");
    expect(ref.code).toBe(0);
    const want = await outcome("reference");
    for (const t of TOPICS) {
      expect(want[`${t}/sft`]).toHaveLength(SFT_STEPS);
      expect(want[`${t}/dpo`]).toHaveLength(DPO_STEPS);
    }

    const cases: Kill[] = [
      { topic: "01-capitals", phase: "sft", afterStep: 2, signal: "SIGKILL" },
      { topic: "01-capitals", phase: "dpo", afterStep: 1, signal: "SIGKILL" },
      { topic: "02-rivers", phase: "sft", afterStep: 2, signal: "SIGTERM" },
    ];
    for (const [i, k] of cases.entries()) {
      const out = `run${i}`;
      const yaml = await config(out);
      const killed = await pipeline(yaml, out, k);
      if (k.signal === "SIGTERM") {
        expect(killed.code).toBe(0);
        expect(killed.stderr).toContain("interrupted; run the same command again to resume");
      } else expect(killed.code).not.toBe(0);
      // it stopped inside the phase: the topic is not recorded and the phase has steps left
      const stoppedAt = (await checkpointStep(out, k.topic, k.phase))!;
      expect(stoppedAt).toBeGreaterThanOrEqual(k.afterStep);
      expect(stoppedAt).toBeLessThan(k.phase === "sft" ? SFT_STEPS : DPO_STEPS);
      expect((await state(out)).results.map((r: { topic: string }) => r.topic)).not.toContain(k.topic);
      const phaseLog = join(tmp, out, "topics", k.topic, k.phase, "metrics.jsonl");
      const kept = (await readFile(phaseLog, "utf8")).split("\n").filter((l) => l && JSON.parse(l).step <= stoppedAt);
      const sftLog = join(tmp, out, "topics", k.topic, "sft", "metrics.jsonl");
      const sftBefore = k.phase === "dpo" ? (await stat(sftLog)).mtimeMs : 0;

      const resumed = await pipeline(yaml, out);
      expect(resumed.code).toBe(0);
      expect(resumed.stdout).toContain(`[pipeline] ${k.phase.toUpperCase()}: continuing from the checkpoint of step ${stoppedAt}`);
      // the steps up to the checkpoint were not run again: their records (timings included) are the first run's
      expect((await readFile(phaseLog, "utf8")).split("\n").slice(0, kept.length)).toEqual(kept);
      if (k.topic === "02-rivers") expect(resumed.stdout).toMatch(/^01-capitals: done earlier/m); // finished topics are not redone
      if (k.phase === "dpo") expect((await stat(sftLog)).mtimeMs).toBe(sftBefore); // nor a finished SFT phase
      expect(await outcome(out)).toEqual(want);
    }
  }, 180_000);
});
