// The curriculum pipeline on the tiny Qwen2 fixture: topics from a folder, SFT then DPO per topic,
// evaluation, adapters per topic, and resuming at the last completed topic.

import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { DPOPipeline, PipelineConfig } from "../../src/finetune/pipeline.ts";
import { readAdapterConfig } from "../../src/io/peft.ts";

const QWEN = join(import.meta.dir, "..", "fixtures", "hf", "qwen2");
const tmp = await mkdtemp(join(tmpdir(), "kiln-pipeline-"));
afterAll(() => rm(tmp, { recursive: true, force: true }));

const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";

async function curriculum(): Promise<string> {
  const dir = join(tmp, "curriculum");
  const topics = {
    "01-capitals": ["France", "Paris", "Italy", "Rome"],
    "02-rivers": ["France", "Seine", "Italy", "Po"],
  };
  for (const [name, [a, x, b, y]] of Object.entries(topics)) {
    await mkdir(join(dir, name), { recursive: true });
    await writeFile(join(dir, name, "sft.jsonl"), jsonl([{ prompt: `Of ${a}:`, completion: ` ${x}.` }, { prompt: `Of ${b}:`, completion: ` ${y}.` }]));
    await writeFile(join(dir, name, "dpo.jsonl"), jsonl([{ prompt: `Of ${a}:`, chosen: ` ${x}.`, rejected: ` ${y}.` }]));
    await writeFile(join(dir, name, "eval.jsonl"), jsonl([{ prompt: `Of ${a}:`, completion: ` ${x}.` }, { prompt: `Of ${b}:`, chosen: ` ${y}.`, rejected: ` ${x}.` }]));
  }
  await mkdir(join(dir, "03-empty"), { recursive: true }); // no data: not a topic
  return dir;
}

describe("DPOPipeline", () => {
  test("the issue's YAML loads as written (batch_size is per_device_batch_size)", async () => {
    const path = join(tmp, "training_pipeline.yaml");
    await writeFile(path, [
      "backend: { type: wasm, device: auto, dtype: float16 }",
      "model: { name: models/Qwen2.5-0.5B-Instruct }",
      "sft: { epochs_per_topic: 3, learning_rate: 0.0003, batch_size: 4 }",
      "dpo: { steps_per_topic: 100, beta: 0.1 }",
    ].join("\n"));
    const { values } = await PipelineConfig.fromFile(path);
    expect(values).toMatchObject({ backendType: "wasm", backendDevice: "auto", backendDtype: "float16", sftEpochsPerTopic: 3, dpoStepsPerTopic: 100, sft: { learning_rate: 0.0003, batch_size: 4 }, dpo: { beta: 0.1 } });
    expect(values.modelName).toBe(join(tmp, "models/Qwen2.5-0.5B-Instruct"));
    await writeFile(path, "backend: { type: null }\nmodel: { name: m }\n");
    expect((await PipelineConfig.fromFile(path)).values.backendType).toBe("auto");
    expect(() => new PipelineConfig({ sft_epoch_per_topic: 2 })).toThrow(/unknown key "sft_epoch_per_topic" \(did you mean "sftEpochsPerTopic"\?\)/);
  });

  test("per topic SFT then DPO, evaluation and an adapter; a second run resumes after the last completed topic", async () => {
    const out = join(tmp, "run");
    const config = new PipelineConfig({
      backend_type: "wasm", model_name: QWEN, curriculum: await curriculum(), output_dir: out, progress: false,
      sft_epochs_per_topic: 10, dpo_steps_per_topic: 4,
      sft: { learning_rate: 1e-2, batch_size: 2, lora_r: 4, lora_alpha: 8, lora_dropout: 0, seed: 3 }, // a section's own seed wins
      dpo: { learning_rate: 5e-3, batch_size: 1 },
    });
    const results = await new DPOPipeline({ config }).train_curriculum();
    expect(results.map((r) => r.topic)).toEqual(["01-capitals", "02-rivers"]);
    for (const r of results) {
      expect(r.sft!.success).toBe(true);
      expect(r.sft!.steps).toBe(10);
      expect(r.dpo!.steps).toBe(4);
      expect(Number.isFinite(r.eval_loss)).toBe(true);
      expect(r.preference_accuracy).toBeGreaterThanOrEqual(0);
      expect((await readAdapterConfig(r.adapter_path)).r).toBe(4);
    }
    // the first topic's eval: the trained completion beats the untrained one
    expect(results[0].eval_loss!).toBeLessThan(results[0].sft!.lossHistory![0]);

    // a crash right after topic 1: its record stays, topic 2's record and run folders are not there yet
    const statePath = join(out, "pipeline_state.json");
    const state = JSON.parse(await readFile(statePath, "utf8"));
    await writeFile(statePath, JSON.stringify({ results: state.results.slice(0, 1) }));
    await rm(join(out, "topics", "02-rivers"), { recursive: true });
    const again = await new DPOPipeline({ config }).trainCurriculum();
    expect(again[0].resumed).toBe(true);
    expect(again[0].eval_loss).toBe(results[0].eval_loss);
    expect(again[1].resumed).toBeUndefined();
    expect(again[1].sft!.success).toBe(true);
    // topic 2 continued the restored topic-1 adapter: its losses are the first run's
    expect(again[1].sft!.lossHistory).toEqual(results[1].sft!.lossHistory!);
    expect(again[1].dpo!.lossHistory).toEqual(results[1].dpo!.lossHistory!);
    expect(again[1].eval_loss).toBe(results[1].eval_loss!);
    expect((await stat(join(out, "topics", "02-rivers", "adapter", "adapter_model.safetensors"))).size).toBeGreaterThan(0);
  });

  test("without a backend the model must be given", () => {
    expect(() => new DPOPipeline({ config: new PipelineConfig({ backend_type: null }) })).toThrow(/backend_type is null, so pass the model/);
  });
});
