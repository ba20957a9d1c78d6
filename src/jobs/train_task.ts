// The `train` task: what `kiln train` does (a character-level GPT on a text file, the same RunConfig),
// run by a worker. The run folder is the job's own (<artifacts>/<job id>/run unless the config names
// `out`), so a worker that takes over a dead worker's job finds the checkpoints there and resumes
// with the Trainer's exact resume (model, optimizer, RNG streams, metrics) instead of starting over.

import { readFile, writeFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { init } from "../init.ts";
import { seed as seedRng } from "../tensor/random.ts";
import { GPT } from "../models/gpt.ts";
import { CharTokenizer } from "../data/tokenizer.ts";
import { TokenDataset } from "../data/dataset.ts";
import { Trainer } from "../train/trainer.ts";
import type { RunConfig } from "../train/config.ts";
import { readTextFile } from "../data/text_file.ts";
import { writeJsonAtomic } from "../io/atomic.ts";
import { latestCheckpointStep } from "../io/checkpoint.ts";
import type { TaskContext } from "./types.ts";

export interface TrainTaskResult {
  steps: number;
  stopped_by: string;
  /** mean training loss over the last logging window */
  final_loss: number;
  final_val_loss: number | null;
  /** the loss of every step this run made (after the resume point) */
  loss_history: number[];
  seconds: number;
  tokens_per_s: number;
  /** the checkpoint step this run resumed from (null: started from scratch) */
  resumed_from: number | null;
  run_folder: string;
  checkpoint: string | null;
}

export async function runTrainTask(config: RunConfig, ctx: TaskContext): Promise<TrainTaskResult> {
  const outDir = config.out ?? join(ctx.dir, "run");
  await mkdir(outDir, { recursive: true });
  const resumedFrom = await latestCheckpointStep(join(outDir, "checkpoints"));
  const text = await readTextFile(config.data, { what: "data" });
  const tokenizer = resumedFrom !== null
    ? CharTokenizer.fromJSON(await readFile(join(outDir, "tokenizer.json"), "utf8"))
    : CharTokenizer.fromText(text);
  if (resumedFrom === null) {
    await writeJsonAtomic(join(outDir, "config.json"), { ...config, out: outDir });
    await writeFile(join(outDir, "tokenizer.json"), JSON.stringify(tokenizer.toJSON()) + "\n");
  }
  const dataset = new TokenDataset(Int32Array.from(tokenizer.encode(text)), config.model.blockSize);
  const type = config.backend.type === "auto" && ctx.backend ? ctx.backend : config.backend.type;
  const backend = await init(type, {
    device: config.backend.device,
    threads: type !== "webgpu" && config.backend.device ? Number(config.backend.device) || undefined : undefined,
  });
  seedRng(config.train.seed);
  const model = new GPT({ vocabSize: tokenizer.vocabSize, ...config.model });
  ctx.log(`train: ${(model.numParameters() / 1e6).toFixed(2)}M parameters on ${backend.name}; run folder ${outDir}` +
    (resumedFrom !== null ? `; resuming from step ${resumedFrom}` : ""));
  try {
    const trainer = new Trainer({
      model, data: dataset, args: config.train, outDir, resume: resumedFrom !== null, signal: ctx.signal, progress: false,
      hooks: [{ onBatchEnd: (_t, _b, out) => ctx.progress({ step: out.step, total: config.train.iters, loss: out.loss, lr: out.lr }) }],
    });
    const r = await trainer.fit();
    if (r.stoppedBy === "nan") throw new Error(`the loss became NaN or infinite by step ${r.steps}${r.checkpointPath ? `; the last checkpoint is ${r.checkpointPath}` : ""}`);
    return {
      steps: r.steps, stopped_by: r.stoppedBy, final_loss: r.finalLoss, final_val_loss: r.finalValLoss ?? null, loss_history: r.lossHistory,
      seconds: r.trainingTime, tokens_per_s: r.tokensPerS, resumed_from: resumedFrom, run_folder: outDir, checkpoint: r.checkpointPath ?? null,
    };
  } finally {
    model.dispose();
  }
}
