// The curriculum pipeline: ordered topics, each with SFT examples and preference pairs; per topic
// SFT (sft_epochs_per_topic epochs) then DPO (dpo_steps_per_topic steps) on one adapter, an
// evaluation (held-out loss on the topic's eval rows, preference accuracy on its eval pairs —
// the fraction where the model gives the chosen completion the higher log-probability), and the
// adapter saved under <output_dir>/topics/<id>. A state file records each finished topic (and a
// finished SFT phase), and each phase trains in its own run folder (topics/<id>/sft, .../dpo), so a
// crash or Ctrl-C resumes at the last completed topic (its adapter reloaded) and, within the
// interrupted topic, from the phase's newest checkpoint (save_steps; Ctrl-C writes one too).
// Curriculum data: a folder with one subfolder per topic in name order (01-name/sft.jsonl,
// 01-name/dpo.jsonl, optional eval.jsonl), or a `topics:` list naming those files.

import { readdir, readFile, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { z } from "zod";
import { writeJsonAtomic } from "../io/atomic.ts";
import { noGrad } from "../autograd/tape.ts";
import { scope } from "../tensor/memory.ts";
import { ConfigError, readConfigFile } from "../train/config.ts";
import { normalizeKeys } from "../train/keys.ts";
import { causalLmLogps, causalLmLoss } from "../train/losses.ts";
import { createBackend, type FinetuneBackend } from "./backend.ts";
import { ModelInterface } from "./model.ts";
import { SftTrainer } from "./sft.ts";
import { DpoTrainer } from "./dpo.ts";
import { collatePreferences, collateSft } from "./batches.ts";
import { formatPreferences, formatSft, loadRows, type Row } from "./data.ts";
import { loraLayers } from "../nn/lora_model.ts";
import { CHECKPOINTS, latestCheckpointStep } from "../io/checkpoint.ts";
import type { FinetuneHooks, FinetuneResult } from "./run.ts";

const Topic = z.strictObject({
  id: z.string().min(1),
  sft: z.string().optional(),
  dpo: z.string().optional(),
  eval: z.string().optional(),
});
export type Topic = z.infer<typeof Topic>;

const PipelineSchema = z.strictObject({
  /** null: no backend, use the model given to the pipeline */
  backendType: z.string().nullable().default("auto"),
  backendDevice: z.string().default("auto"),
  backendDtype: z.enum(["auto", "float32", "bfloat16", "float16"]).default("auto"),
  /** the model folder loaded through the backend */
  modelName: z.string().optional(),
  sftEpochsPerTopic: z.number().int().nonnegative().default(3),
  dpoStepsPerTopic: z.number().int().nonnegative().default(100),
  /** SFT / DPO trainer keys (learning_rate, batch_size, beta, ...) */
  sft: z.record(z.string(), z.unknown()).default({}),
  dpo: z.record(z.string(), z.unknown()).default({}),
  /** a folder with one subfolder per topic */
  curriculum: z.string().optional(),
  topics: z.array(Topic).optional(),
  outputDir: z.string().default("runs/pipeline"),
  randomSeed: z.number().int().default(42),
  progress: z.boolean().default(true),
});

/** The pipeline's settings (the keys as written in Python: backend_type, sft_epochs_per_topic, ...). */
export class PipelineConfig {
  readonly values: z.infer<typeof PipelineSchema>;
  constructor(input: Record<string, unknown> = {}) {
    this.values = normalizeKeys(PipelineSchema, input, { source: "pipeline config" });
  }

  /**
   * From the YAML layout: `backend: {type, device, dtype}`, `model: {name}`,
   * `sft: {epochs_per_topic, ...trainer keys}`, `dpo: {steps_per_topic, ...}`, `curriculum` or
   * `topics`, `output_dir`. Relative paths are resolved against the file's folder.
   */
  static async fromFile(path: string): Promise<PipelineConfig> {
    const raw = await readConfigFile(path);
    const { backend, model, sft, dpo, ...rest } = raw as Record<string, Record<string, unknown> | undefined>;
    const base = dirname(resolve(path));
    const at = (p: unknown) => (typeof p === "string" && !p.startsWith("/") ? join(base, p) : p);
    const { epochs_per_topic, epochsPerTopic, ...sftKeys } = sft ?? {};
    const { steps_per_topic, stepsPerTopic, ...dpoKeys } = dpo ?? {};
    const b = backend ?? {};
    const input: Record<string, unknown> = {
      ...rest,
      backend_type: backend === null || !("type" in b) ? "auto" : b.type ?? "auto",
      backend_device: b.device ?? "auto",
      backend_dtype: b.dtype ?? "auto",
      model_name: at(model?.name),
      sft_epochs_per_topic: epochs_per_topic ?? epochsPerTopic,
      dpo_steps_per_topic: steps_per_topic ?? stepsPerTopic,
      sft: sftKeys,
      dpo: dpoKeys,
    };
    for (const k of ["curriculum", "output_dir", "outputDir"]) if (k in input) input[k] = at(input[k]);
    if (Array.isArray(input.topics)) input.topics = (input.topics as Record<string, unknown>[]).map((t) => ({ ...t, sft: at(t.sft), dpo: at(t.dpo), eval: at(t.eval) }));
    for (const k of ["backend_device", "backend_dtype", "model_name"]) if (input[k] === undefined) delete input[k];
    return new PipelineConfig(input);
  }
}

export interface TopicResult {
  topic: string;
  sft?: FinetuneResult;
  dpo?: FinetuneResult;
  /** mean masked loss on the topic's eval rows */
  eval_loss?: number;
  /** fraction of eval pairs where log p(chosen) > log p(rejected) */
  preference_accuracy?: number;
  adapter_path: string;
  /** true when this run found the topic done and skipped it */
  resumed?: boolean;
}

export interface PipelineOptions {
  config: PipelineConfig;
  /** a loaded model; required when the config has no backend (backend_type: null) */
  model?: ModelInterface;
  backend?: FinetuneBackend;
  signal?: AbortSignal;
  /** the engine's hooks, passed to every topic's SFT and DPO run (pipeline.position says which) */
  hooks?: FinetuneHooks[];
}

/** Where a running pipeline is: the topic (index of how many) and the phase. */
export interface PipelinePosition {
  topic: string;
  index: number;
  topics: number;
  phase: "sft" | "dpo" | "eval";
}

export class DPOPipeline {
  readonly config: PipelineConfig;
  #model?: ModelInterface;
  #backend?: FinetuneBackend;
  readonly #signal?: AbortSignal;
  readonly #hooks?: FinetuneHooks[];
  /** the topic and phase running now (null before and after trainCurriculum) */
  position: PipelinePosition | null = null;

  constructor({ config, model, backend, signal, hooks }: PipelineOptions) {
    this.config = config;
    this.#model = model;
    this.#backend = backend;
    this.#signal = signal;
    this.#hooks = hooks;
    if (config.values.backendType === null && !model && !backend) throw new ConfigError("invalid pipeline config: backend_type is null, so pass the model to DPOPipeline");
  }

  /**
   * Runs every topic not finished yet, in order; returns one result per topic (finished ones
   * included). A topic interrupted mid-way continues from its SFT or DPO run folder's newest
   * checkpoint (a finished SFT phase is not redone), with the losses of an uninterrupted run.
   */
  async trainCurriculum(): Promise<TopicResult[]> {
    const c = this.config.values;
    const topics = await resolveTopics(c.topics, c.curriculum);
    const model = await this.#loadModel();
    const statePath = join(c.outputDir, "pipeline_state.json");
    const state = await readState(statePath);
    const results: TopicResult[] = [];
    const log = (s: string) => c.progress && console.log(s);
    try {
      for (const [index, topic] of topics.entries()) {
        const at = (phase: PipelinePosition["phase"]) => void (this.position = { topic: topic.id, index, topics: topics.length, phase });
        if (!(await this.#topic(topic, at, { model, state, statePath, results, log }))) break;
      }
    } finally {
      this.position = null;
    }
    return results;
  }

  /** Runs (or skips, or continues) one topic; false when interrupted. */
  async #topic(topic: Topic, at: (phase: PipelinePosition["phase"]) => void, { model, state, statePath, results, log }: TopicRun): Promise<boolean> {
    const c = this.config.values;
    const done = state.results.find((r) => r.topic === topic.id);
    if (done) {
      results.push({ ...done, resumed: true });
      return true;
    }
    if (this.#signal?.aborted) return false;
    const dir = join(c.outputDir, "topics", topic.id);
    const partial = state.current?.topic === topic.id ? state.current : undefined;
    // a new process starts from the base model: bring back the adapter this topic starts from
    // (or, its SFT finished, the adapter SFT left)
    const restore = partial?.sft_adapter ?? (results.at(-1)?.resumed ? results.at(-1)!.adapter_path : undefined);
    if (restore) {
      if (loraLayers(model.module).length) throw new Error("[pipeline] the model already has adapters; resume with the base model");
      log(`[pipeline] resuming topic "${topic.id}": loading the adapter in ${restore}`);
      await model.loadAdapter(restore);
    }
    log(`[pipeline] topic "${topic.id}"`);
    const result: TopicResult = { topic: topic.id, adapter_path: join(dir, "adapter") };
    // the pipeline's seed and progress unless a section sets its own
    const common = (section: Record<string, unknown>) => ({
      ...(["seed", "random_seed", "randomSeed"].some((k) => k in section) ? {} : { randomSeed: c.randomSeed }),
      ...("progress" in section ? {} : { progress: c.progress }),
    });
    if (topic.sft && c.sftEpochsPerTopic > 0 && partial?.sft) result.sft = partial.sft;
    else if (topic.sft && c.sftEpochsPerTopic > 0) {
      at("sft");
      const sft = new SftTrainer(model, { ...common(c.sft), ...without(c.sft, EPOCH_KEYS), epochs: c.sftEpochsPerTopic });
      const outDir = join(dir, "sft");
      result.sft = await sft.train(topic.sft, undefined, { outDir, signal: this.#signal, resume: await resumable(outDir, "SFT", log), hooks: this.#hooks });
      if (!result.sft.success) throw new Error(`[pipeline] topic "${topic.id}": SFT failed: ${result.sft.error_message}`);
      if (this.#signal?.aborted) return false; // resumes from the checkpoint the interrupted SFT wrote
      // SFT is done: its adapter is what DPO starts from (and its reference) after a restart
      state.current = { topic: topic.id, sft: stripHeavy(result).sft, sft_adapter: await model.saveAdapter(join(outDir, "adapter")) };
      await writeJsonAtomic(statePath, state);
    }
    if (topic.dpo && c.dpoStepsPerTopic > 0) {
      at("dpo");
      const dpo = new DpoTrainer(model, { ...common(c.dpo), ...without(c.dpo, STEP_KEYS), maxSteps: c.dpoStepsPerTopic });
      const outDir = join(dir, "dpo");
      try {
        result.dpo = await dpo.train(topic.dpo, undefined, { outDir, signal: this.#signal, resume: await resumable(outDir, "DPO", log), hooks: this.#hooks });
      } finally {
        dpo.dispose(); // the next topic (in this process or after a restart) starts without the reference copy
      }
      if (!result.dpo.success) throw new Error(`[pipeline] topic "${topic.id}": DPO failed: ${result.dpo.error_message}`);
    }
    if (this.#signal?.aborted) return false; // an interrupted topic is not recorded: it continues on resume
    at("eval");
    if (topic.eval) Object.assign(result, await evaluateTopic(model, await loadRows(topic.eval)));
    await model.saveAdapter(result.adapter_path);
    results.push(result);
    state.results.push(stripHeavy(result));
    state.current = undefined;
    await writeJsonAtomic(statePath, state);
    log(`[pipeline] topic "${topic.id}" done${result.eval_loss !== undefined ? `: eval loss ${result.eval_loss.toFixed(4)}` : ""}${result.preference_accuracy !== undefined ? `, preference accuracy ${result.preference_accuracy.toFixed(3)}` : ""}`);
    return true;
  }

  /** The Python name of trainCurriculum. */
  train_curriculum(): Promise<TopicResult[]> {
    return this.trainCurriculum();
  }

  getModel(): ModelInterface | undefined {
    return this.#model;
  }

  async #loadModel(): Promise<ModelInterface> {
    if (this.#model) return this.#model;
    const c = this.config.values;
    if (!c.modelName) throw new ConfigError("invalid pipeline config: model.name (model_name) is required when no model is given");
    this.#backend ??= await createBackend(c.backendType ?? "auto", { device: c.backendDevice, dtype: c.backendDtype, seed: c.randomSeed });
    this.#model = await this.#backend.loadModel(c.modelName);
    return this.#model;
  }
}

/** Topics from a `topics:` list, or the subfolders of a curriculum folder in name order. */
export async function resolveTopics(topics: Topic[] | undefined, folder: string | undefined): Promise<Topic[]> {
  if (topics?.length) return topics;
  if (!folder) throw new ConfigError("invalid pipeline config: give `curriculum` (a folder of topic folders) or a `topics` list");
  const entries = await readdir(folder, { withFileTypes: true }).catch(() => {
    throw new ConfigError(`curriculum folder not found: ${folder}`);
  });
  const out: Topic[] = [];
  for (const e of entries.filter((e) => e.isDirectory()).map((e) => e.name).sort()) {
    const dir = join(folder, e);
    const file = async (name: string) => ((await stat(join(dir, name)).then((s) => s.isFile(), () => false)) ? join(dir, name) : undefined);
    const topic: Topic = { id: basename(dir), sft: await file("sft.jsonl"), dpo: await file("dpo.jsonl"), eval: await file("eval.jsonl") };
    if (topic.sft || topic.dpo) out.push(topic);
  }
  if (!out.length) throw new ConfigError(`curriculum folder ${folder} has no topic folder with sft.jsonl or dpo.jsonl`);
  return out;
}

/** Held-out loss on SFT rows and preference accuracy on pair rows of an eval file. */
export async function evaluateTopic(model: ModelInterface, rows: Row[]): Promise<{ eval_loss?: number; preference_accuracy?: number }> {
  const isPair = (r: Row) => !!r.value && typeof r.value === "object" && "chosen" in (r.value as object);
  const opts = { tokenizer: model.tokenizer!, chatTemplate: model.chatTemplate };
  const sftRows = rows.filter((r) => !isPair(r)), pairRows = rows.filter(isPair);
  const out: { eval_loss?: number; preference_accuracy?: number } = {};
  const wasTraining = model.module.training;
  model.module.eval();
  try {
    if (sftRows.length) {
      let total = 0;
      for (const e of formatSft(sftRows, opts).examples) {
        const l = scope(() => noGrad(() => {
          const b = collateSft([e], model.tokenizer!.eosTokenId ?? 0, model.backend);
          return causalLmLoss(model.module, b.x, b.y);
        }));
        total += await l.item();
        l.dispose();
      }
      out.eval_loss = total / sftRows.length;
    }
    if (pairRows.length) {
      let wins = 0;
      const examples = formatPreferences(pairRows, opts).examples;
      for (let i = 0; i < examples.length; i++) {
        const lp = scope(() => noGrad(() => {
          const b = collatePreferences([examples[i]], [i], model.tokenizer!.eosTokenId ?? 0, {}, model.backend);
          return causalLmLogps(model.module, b.x, b.y);
        }));
        const [c, r] = (await lp.data()) as Float32Array;
        lp.dispose();
        if (c > r) wins++;
      }
      out.preference_accuracy = wins / examples.length;
    }
  } finally {
    model.module.train(wasTraining);
  }
  return out;
}

// the per-topic counts come from sft_epochs_per_topic / dpo_steps_per_topic, not the trainer sections
const EPOCH_KEYS = ["epochs", "num_epochs", "numEpochs", "num_train_epochs", "numTrainEpochs", "max_steps", "maxSteps"];
const STEP_KEYS = ["max_steps", "maxSteps", "iters", "max_iters"];

function without(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([k]) => !keys.includes(k)));
}

interface TopicRun {
  model: ModelInterface;
  state: State;
  statePath: string;
  results: TopicResult[];
  log: (s: string) => void;
}

interface State {
  results: TopicResult[];
  /** the topic under way when its SFT phase finished: that result and the adapter it left */
  current?: { topic: string; sft?: FinetuneResult; sft_adapter?: string };
}

/** Whether a phase's run folder has a checkpoint to continue from (an interrupted earlier run). */
async function resumable(outDir: string, phase: string, log: (s: string) => void): Promise<boolean> {
  const step = await latestCheckpointStep(join(outDir, CHECKPOINTS));
  if (step !== null) log(`[pipeline] ${phase}: continuing from the checkpoint of step ${step} in ${outDir}`);
  return step !== null;
}

async function readState(path: string): Promise<State> {
  const text = await readFile(path, "utf8").catch(() => null);
  if (text === null) return { results: [] };
  try {
    const s = JSON.parse(text) as State;
    if (!Array.isArray(s.results)) throw new Error("no results list");
    return s;
  } catch (e) {
    throw new Error(`[pipeline] ${path} is not a pipeline state file (${(e as Error).message}): delete it to start over`);
  }
}

/** A result as stored in the state file: the numbers, not the per-step loss lists. */
function stripHeavy(r: TopicResult): TopicResult {
  const slim = (f?: FinetuneResult) => f && { ...f, lossHistory: undefined };
  return { ...r, sft: slim(r.sft), dpo: slim(r.dpo) };
}
