// A pipeline as jobs: SFT -> DPO (starting from the SFT adapter, by $from) -> GGUF export of the
// DPO adapter (by $from), on the tiny Qwen2 fixture, run by one worker in dependency order.

import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JobQueue } from "../../src/jobs/queue.ts";
import { Worker } from "../../src/jobs/worker.ts";

const dir = mkdtempSync(join(tmpdir(), "kiln-chain-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const QWEN = join(import.meta.dir, "..", "fixtures", "hf", "qwen2");
const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";

test("sft -> dpo -> export chained by $from: each starts from the previous job's output", async () => {
  const sftData = join(dir, "sft.jsonl");
  const dpoData = join(dir, "dpo.jsonl");
  writeFileSync(sftData, jsonl([{ prompt: "The capital of France is", completion: " Paris." }, { prompt: "The capital of Peru is", completion: " Lima." }]));
  writeFileSync(dpoData, jsonl([{ prompt: "The capital of France is", chosen: " Paris.", rejected: " Lima." }]));
  const q = new JobQueue(`sqlite://${join(dir, "q.db")}`);
  const common = { model: QWEN, backend: "wasm", max_steps: 3, per_device_batch_size: 2, lora_r: 4, lora_alpha: 8, lora_dropout: 0 };
  // submitted in reverse order of need: dependencies, not submission order, decide
  const sft = await q.submitJob({ task: "sft", config: { ...common, data: sftData, learning_rate: 1e-2 } });
  const dpo = await q.submitJob({ task: "dpo", config: { ...common, data: dpoData, adapter: { $from: sft, output: "adapter_path" } }, priority: 9 });
  const gguf = await q.submitJob({ task: "export", config: { adapter: { $from: dpo, output: "adapter_path" }, base: QWEN }, priority: 10 });
  expect((await q.getJob(gguf)).dependsOn).toEqual([dpo]);
  const worker = new Worker({ queue: q, artifacts: join(dir, "artifacts"), exitWhenIdle: true, log: () => {} });
  await worker.run();
  for (const id of [sft, dpo, gguf]) expect({ id, status: await q.getJobStatus(id), error: (await q.getJob(id)).error }).toEqual({ id, status: "completed", error: null });
  const s = (await q.getJobResults(sft)) as { adapter_path: string; steps: number };
  const d = (await q.getJobResults(dpo)) as { adapter_path: string; steps: number };
  const e = (await q.getJobResults(gguf)) as { gguf_path: string; layers: number };
  expect(s.steps).toBe(3);
  expect(s.adapter_path).toBe(join(dir, "artifacts", sft, "adapter"));
  expect(d.adapter_path).toBe(join(dir, "artifacts", dpo, "adapter"));
  expect(e.gguf_path).toBe(join(dir, "artifacts", gguf, "adapter.gguf"));
  expect(existsSync(e.gguf_path)).toBe(true);
  expect(e.layers).toBeGreaterThan(0);
  // the order they ran in: by their start times
  const started = await Promise.all([sft, dpo, gguf].map(async (id) => (await q.getJob(id)).startedAt!.getTime()));
  expect(started).toEqual([...started].sort((a, b) => a - b));
  await q.close();
}, 120_000);
