// Supervised fine-tuning with LoRA, as TRL's SFTTrainer on a PEFT model: data rows are tokenized
// with the model's tokenizer (and chat template), the loss is the masked next-token cross-entropy
// (completions / assistant turns only by default), and the steps run on the engine's one loop.
// A trainer owns one adapter: train() again continues it with a fresh optimizer and schedule.

import { join } from "node:path";
import type { Rng } from "../tensor/random.ts";
import type { Split } from "../data/dataset.ts";
import type { BatchSource } from "../train/trainer.ts";
import { causalLmLoss } from "../train/losses.ts";
import { parseSftConfig, type SftConfig } from "./config.ts";
import { loadRows, formatSft, pack, type SftExample } from "./data.ts";
import { collateSft, EpochSampler, type SftBatch } from "./batches.ts";
import type { ModelInterface } from "./model.ts";
import { adapterOptimizer, engineArgs, ownAdapter, runEngine, type FinetuneHooks, type FinetuneResult } from "./run.ts";

export type SftData = readonly unknown[] | string;

/** Per-call options of train(): the run folder (default: the config's outputDir), a stop signal, and whether to continue from the run folder's newest checkpoint (default: the config's resume, on the first call). */
export interface TrainCallOptions {
  outDir?: string | null;
  signal?: AbortSignal;
  resume?: boolean;
  /** the engine's hooks (onBatchEnd for live progress, onCheckpoint, ...) */
  hooks?: FinetuneHooks[];
}

export class SftTrainer {
  readonly config: SftConfig;
  readonly adapterName: string;
  /** results of trainOnTopic, by topic id */
  readonly topicResults = new Map<string, FinetuneResult>();
  readonly #model: ModelInterface;
  #calls = 0;

  constructor(model: ModelInterface, config: Record<string, unknown> = {}) {
    this.config = parseSftConfig(config);
    this.#model = model;
    if (!model.tokenizer) throw new Error(`[sft] the model${model.path ? ` at ${model.path}` : ""} has no tokenizer (tokenizer.json): SFT needs one to read text data`);
    this.adapterName = ownAdapter(model, this.config, (s) => this.config.progress && console.log(s));
  }

  getModel(): ModelInterface {
    return this.#model;
  }

  /**
   * Trains the adapter on `data` (rows or a .jsonl/.json path), optionally evaluating on
   * `evalData`. Returns the engine's TrainingResult with the seeds' names; success: false with
   * the message when training fails.
   */
  async train(data: SftData, evalData?: SftData, { outDir, signal, resume, hooks }: TrainCallOptions = {}): Promise<FinetuneResult> {
    const c = this.config;
    let examples: SftExample[], evalExamples: SftExample[] = [], skipped = 0;
    try {
      ({ examples, skipped } = this.#format(await loadRows(data)));
      if (evalData !== undefined) evalExamples = this.#format(await loadRows(evalData)).examples;
      if (!examples.length) throw new Error("[sft] no training examples");
    } catch (e) {
      return failed(e);
    }
    const model = this.#model;
    const padId = model.tokenizer!.eosTokenId ?? 0;
    const sampler = new EpochSampler(examples.length, evalExamples.length, c.randomSeed);
    const source: BatchSource<SftBatch> = {
      batch: (split: Split, batchSize: number, rng: Rng) => {
        const list = split === "train" || !evalExamples.length ? examples : evalExamples;
        const idx = split === "train" ? sampler.next(batchSize) : sampler.nextVal(batchSize, rng);
        return collateSft(idx.map((i) => list[i]), padId, model.backend);
      },
    };
    const perStep = c.batchSize * c.gradientAccumulationSteps;
    const iters = c.maxSteps ?? Math.max(1, Math.ceil(examples.length / perStep) * c.epochs);
    const evalBatches = evalExamples.length ? Math.ceil(evalExamples.length / c.batchSize) : 1;
    this.#calls++;
    // as HF's gradient_checkpointing=True: enabled on the model, which keeps it
    if (c.gradientCheckpointing) model.module.gradientCheckpointing = true;
    model.module.train();
    try {
      return await runEngine<SftBatch>({
        model, data: source, args: engineArgs(c, iters, evalBatches), optimizer: adapterOptimizer(model, c),
        loss: (m, b) => causalLmLoss(m as ModelInterface["module"], b.x, b.y),
        tokens: (b) => b.x.size, outDir: outDir === undefined ? c.outputDir : outDir, resume: resume ?? (c.resume && this.#calls === 1),
        progress: c.progress, samplesPerStep: perStep, onTrainBegin: (step) => sampler.skipTo(step * perStep), hasEval: evalExamples.length > 0, signal,
        metrics: { rows_skipped: skipped, train_examples: examples.length }, hooks,
      });
    } finally {
      model.module.eval();
    }
  }

  /** train(data), then the adapter saved under `<outputDir or ./adapters>/<topicId>`; kept in topicResults. */
  async trainOnTopic(data: SftData, topicId: string, evalData?: SftData): Promise<FinetuneResult> {
    const base = this.config.outputDir ?? "adapters";
    const result = await this.train(data, evalData, { outDir: this.config.outputDir ? join(this.config.outputDir, topicId) : null });
    if (result.success) result.adapter_path = await this.saveAdapter(join(base, topicId));
    this.topicResults.set(topicId, result);
    return result;
  }

  /** Writes the adapter as a PEFT folder (default: <outputDir>/adapter); returns the path. */
  async saveAdapter(dir?: string): Promise<string> {
    const path = dir ?? join(this.config.outputDir ?? ".", "adapter");
    return this.#model.saveAdapter(path, this.adapterName);
  }

  #format(rows: Awaited<ReturnType<typeof loadRows>>): { examples: SftExample[]; skipped: number } {
    const c = this.config;
    const out = formatSft(rows, {
      tokenizer: this.#model.tokenizer!, chatTemplate: this.#model.chatTemplate, maxSeqLength: c.packing ? undefined : c.maxSeqLength,
      completionOnlyLoss: c.completionOnlyLoss, skipInvalid: c.skipInvalid,
    });
    return c.packing ? { examples: pack(out.examples, c.maxSeqLength), skipped: out.skipped } : out;
  }
}

export function failed(e: unknown): FinetuneResult {
  return {
    success: false, final_loss: null, training_time_seconds: 0, samples_trained: 0, adapter_path: null,
    error_message: e instanceof Error ? e.message : String(e), metrics: {},
  };
}
