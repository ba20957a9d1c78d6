// The built-in tasks: train (the `kiln train` config), sft and dpo (the `kiln sft`/`kiln dpo`
// config: model folder, data, and the fine-tuning keys), pipeline (the curriculum pipeline's
// config), and export (`kiln export gguf`: a model or a PEFT adapter to GGUF). Their schemas are
// checked at submit time; the heavy modules load only when a worker runs one.

import { mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { z } from "zod";
import { RunConfig } from "../train/config.ts";
import { parseDpoConfig, parseSftConfig } from "../finetune/config.ts";
import { PipelineConfig } from "../finetune/pipeline.ts";
import type { FinetuneHooks } from "../finetune/run.ts";
import type { TaskContext, TaskDefinition } from "./types.ts";

/** kiln's own errors carry their message; a zod failure inside a parse is reported as one issue. */
function refineWith(parse: (keys: Record<string, unknown>) => unknown) {
  return (value: Record<string, unknown>, ctx: z.RefinementCtx) => {
    try {
      parse(value);
    } catch (e) {
      ctx.addIssue({ code: "custom", message: (e as Error).message });
    }
  };
}

const FinetuneJob = z
  .object({
    /** Hugging Face model folder */
    model: z.string().min(1),
    /** training rows (.jsonl / .json) */
    data: z.string().min(1),
    eval: z.string().optional(),
    /** start from this PEFT adapter */
    adapter: z.string().optional(),
    backend: z.string().optional(),
    device: z.string().optional(),
  })
  .catchall(z.unknown());
type FinetuneJob = z.infer<typeof FinetuneJob>;

function finetuneKeys(job: FinetuneJob): Record<string, unknown> {
  const { model: _m, data: _d, eval: _e, adapter: _a, backend: _b, device: _v, ...keys } = job;
  return keys;
}

async function runFinetune(verb: "sft" | "dpo", job: FinetuneJob, ctx: TaskContext) {
  const { createBackend } = await import("../finetune/backend.ts");
  const { hasCheckpoint } = await import("../io/checkpoint.ts");
  const runDir = join(ctx.dir, "run");
  const backend = await createBackend(job.backend ?? ctx.backend ?? "auto", job.device ? { device: job.device } : {});
  const model = await backend.loadModel(job.model, { adapterPath: job.adapter });
  // a job taken over from a dead worker continues from the checkpoint that worker left (save_steps)
  const resume = await hasCheckpoint(join(runDir, "checkpoints"));
  const config = { ...finetuneKeys(job), output_dir: runDir, resume, progress: false };
  const trainer = verb === "sft" ? backend.createSftTrainer(model, config) : backend.createDpoTrainer(model, config);
  ctx.log(`${verb}: ${job.model} on ${backend.name}${resume ? " (resuming from the last checkpoint)" : ""}`);
  const result = await trainer.train(job.data, job.eval, { signal: ctx.signal, hooks: [stepProgress(ctx)] });
  if (!result.success) throw new Error(`${verb} failed: ${result.error_message}`);
  const adapterPath = ctx.signal.aborted ? null : await trainer.saveAdapter(join(ctx.dir, "adapter"));
  return { ...result, adapter_path: adapterPath, run_folder: runDir, resumed: resume };
}

/** Live progress for the queue: each optimizer step's number, the run's length and loss (stored with the next heartbeat). */
function stepProgress(ctx: TaskContext, where?: () => Record<string, unknown>): FinetuneHooks {
  return {
    onBatchEnd: (t, _b, out) => ctx.progress({ ...where?.(), step: out.step, total: t.args.iters, loss: out.loss, lr: out.lr }),
  };
}

/** A definition typed by its config, stored untyped (the registry checks configs against the schema). */
function task<C>(d: TaskDefinition<C>): TaskDefinition<unknown> {
  return d as unknown as TaskDefinition<unknown>;
}

const ExportJob = z
  .strictObject({
    /** a Hugging Face model folder (kiln's own or one it loads) */
    model: z.string().min(1).optional(),
    /** a PEFT LoRA adapter folder, written as a llama.cpp adapter */
    adapter: z.string().min(1).optional(),
    /** the adapter's base model folder (default: its base_model_name_or_path) */
    base: z.string().optional(),
    /** f32, f16 (default), bf16, q8_0, q4_0, q4_1, q4_k, q6_k (adapters: f32, f16, bf16, q8_0) */
    quantization: z.enum(["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q4_k", "q6_k"]).optional(),
    /** the GGUF file (default <artifacts>/<job>/model.gguf or adapter.gguf) */
    out: z.string().optional(),
    name: z.string().optional(),
  })
  .refine((j) => !!j.model !== !!j.adapter, { message: "give exactly one of model (a model folder) or adapter (a PEFT adapter folder)" });
type ExportJob = z.infer<typeof ExportJob>;

const PipelineJob = z.record(z.string(), z.unknown()).superRefine(refineWith((keys) => new PipelineConfig(keys)));

export const BUILTIN_TASKS: Record<string, TaskDefinition<unknown>> = {
  train: task<RunConfig>({
    description: "train a character-level GPT (the `kiln train` config: data, model, train, backend, sample)",
    schema: RunConfig as unknown as z.ZodType<RunConfig>,
    run: async (config, ctx) => (await import("./train_task.ts")).runTrainTask(config, ctx),
  }),
  sft: task<FinetuneJob>({
    description: "LoRA supervised fine-tuning (model, data, eval, adapter + the `kiln sft` keys); result.adapter_path",
    schema: FinetuneJob.superRefine(refineWith((job) => parseSftConfig(finetuneKeys(job as FinetuneJob)))) as unknown as z.ZodType<FinetuneJob>,
    run: (job, ctx) => runFinetune("sft", job, ctx),
  }),
  dpo: task<FinetuneJob>({
    description: "LoRA DPO (model, data, eval, adapter + the `kiln dpo` keys); result.adapter_path",
    schema: FinetuneJob.superRefine(refineWith((job) => parseDpoConfig(finetuneKeys(job as FinetuneJob)))) as unknown as z.ZodType<FinetuneJob>,
    run: (job, ctx) => runFinetune("dpo", job, ctx),
  }),
  pipeline: task<Record<string, unknown>>({
    description: "the curriculum pipeline (per topic SFT then DPO); resumes after the last finished topic, mid-topic from its checkpoint; result.adapter_path = the last topic's",
    schema: PipelineJob,
    run: async (keys, ctx) => {
      const { DPOPipeline } = await import("../finetune/pipeline.ts");
      const hasOut = "output_dir" in keys || "outputDir" in keys;
      const config = new PipelineConfig({ ...keys, ...(hasOut ? {} : { output_dir: join(ctx.dir, "pipeline") }), progress: false });
      const pipeline: InstanceType<typeof DPOPipeline> = new DPOPipeline({
        config, signal: ctx.signal,
        hooks: [stepProgress(ctx, () => {
          const p = pipeline.position;
          return p ? { topic: p.topic, topic_index: p.index + 1, topics: p.topics, phase: p.phase } : {};
        })],
      });
      const topics = await pipeline.trainCurriculum();
      return { topics, adapter_path: topics.at(-1)?.adapter_path ?? null, output_dir: config.values.outputDir };
    },
  }),
  export: task<ExportJob>({
    description: "export a model folder (model) or a PEFT adapter (adapter, base) as GGUF for llama.cpp; result.gguf_path",
    schema: ExportJob,
    run: async (job, ctx) => {
      const out = job.out ?? join(ctx.dir, job.adapter ? "adapter.gguf" : "model.gguf");
      await mkdir(dirname(out), { recursive: true });
      if (job.adapter) {
        const { exportGgufAdapter } = await import("../io/gguf_adapter.ts");
        const { layers } = await exportGgufAdapter(job.adapter, out, { baseModel: job.base, quantization: (job.quantization ?? "f16") as never, name: job.name });
        ctx.log(`export: adapter ${job.adapter} -> ${out} (${layers} layers)`);
        return { gguf_path: out, layers, quantization: job.quantization ?? "f16" };
      }
      const { exportGguf } = await import("../io/gguf_export.ts");
      const { init } = await import("../init.ts");
      const backend = await init("wasm");
      const { types, fallbacks } = await exportGguf(job.model!, out, { quantization: (job.quantization ?? "f16") as never, name: job.name, backend });
      ctx.log(`export: ${job.model} -> ${out}`);
      return { gguf_path: out, types, fallbacks, quantization: job.quantization ?? "f16" };
    },
  }),
};
