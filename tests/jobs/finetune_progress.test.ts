// sft, dpo and pipeline jobs report live progress as the train task does: each optimizer step's
// number, the run's length and loss, written with the worker's heartbeat — so `kiln jobs status`
// shows a running fine-tuning job moving (the pipeline's also names its topic and phase).

import { afterAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JobQueue } from "../../src/jobs/queue.ts";
import { Worker } from "../../src/jobs/worker.ts";
import type { TaskProgress } from "../../src/jobs/types.ts";

const dir = mkdtempSync(join(tmpdir(), "kiln-ftprogress-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const QWEN = join(import.meta.dir, "..", "fixtures", "hf", "qwen2");
const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";
const SFT_ROWS = [{ prompt: "The capital of France is", completion: " Paris." }, { prompt: "The capital of Peru is", completion: " Lima." }];
const PAIRS = [{ prompt: "The capital of France is", chosen: " Paris.", rejected: " Lima." }];

/** Runs the queue's jobs with one in-process worker, recording every progress the queue shows while each runs. */
async function watch(q: JobQueue, ids: string[]): Promise<Map<string, TaskProgress[]>> {
  const seen = new Map<string, TaskProgress[]>(ids.map((id) => [id, []]));
  const worker = new Worker({ queue: q, artifacts: join(dir, "artifacts"), exitWhenIdle: true, heartbeatSeconds: 0.02, pollSeconds: 0.02, log: () => {} });
  let done = false;
  const running = worker.run().finally(() => (done = true));
  while (!done) {
    for (const id of ids) {
      const j = await q.getJob(id);
      const list = seen.get(id)!;
      if (j.status === "running" && j.progress && j.progress.step !== list.at(-1)?.step) list.push(j.progress);
    }
    await Bun.sleep(5);
  }
  await running;
  for (const id of ids) expect({ id, status: await q.getJobStatus(id), error: (await q.getJob(id)).error }).toEqual({ id, status: "completed", error: null });
  return seen;
}

function expectMoving(list: TaskProgress[], total: number): void {
  expect(list.length).toBeGreaterThanOrEqual(2); // seen at two steps or more while running
  const steps = list.map((p) => p.step!);
  expect(steps).toEqual([...steps].sort((a, b) => a - b)); // increasing
  expect(steps[0]).toBeGreaterThanOrEqual(1);
  expect(steps.at(-1)!).toBeLessThanOrEqual(total);
  for (const p of list) {
    expect(p.total).toBe(total);
    expect(Number.isFinite(p.loss)).toBe(true);
  }
}

test("a running sft, dpo or pipeline job shows its step increasing", async () => {
  const sftData = join(dir, "sft.jsonl"), dpoData = join(dir, "dpo.jsonl");
  writeFileSync(sftData, jsonl(SFT_ROWS));
  writeFileSync(dpoData, jsonl(PAIRS));
  const topic = join(dir, "curriculum", "01-capitals");
  mkdirSync(topic, { recursive: true });
  writeFileSync(join(topic, "sft.jsonl"), jsonl(SFT_ROWS));
  writeFileSync(join(topic, "dpo.jsonl"), jsonl(PAIRS));
  const q = new JobQueue(`sqlite://${join(dir, "q.db")}`);
  const common = { model: QWEN, backend: "wasm", per_device_batch_size: 1, lora_r: 4, lora_alpha: 8, lora_dropout: 0 };
  const sft = await q.submitJob({ task: "sft", config: { ...common, data: sftData, max_steps: 30, learning_rate: 1e-2 } });
  const dpo = await q.submitJob({ task: "dpo", config: { ...common, data: dpoData, max_steps: 30 } });
  const pipeline = await q.submitJob({
    task: "pipeline",
    config: { backend_type: "wasm", model_name: QWEN, curriculum: join(dir, "curriculum"), sft_epochs_per_topic: 15, dpo_steps_per_topic: 30, sft: { batch_size: 1 }, dpo: { batch_size: 1 } },
  });
  const seen = await watch(q, [sft, dpo, pipeline]);
  expectMoving(seen.get(sft)!, 30);
  expectMoving(seen.get(dpo)!, 30);
  const phases = seen.get(pipeline)!;
  expect(phases.every((p) => p.topic === "01-capitals" && p.topic_index === 1 && p.topics === 1)).toBe(true);
  const sftPart = phases.filter((p) => p.phase === "sft"), dpoPart = phases.filter((p) => p.phase === "dpo");
  expectMoving(sftPart, 30); // 2 rows, batch 1, 15 epochs
  expectMoving(dpoPart, 30);
  expect(phases.indexOf(sftPart.at(-1)!)).toBeLessThan(phases.indexOf(dpoPart[0])); // SFT, then DPO
}, 120_000);
