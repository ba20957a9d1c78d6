// `kiln pipeline run <config.yaml>`: the curriculum pipeline (src/finetune/pipeline.ts) from a YAML
// or JSON file; Ctrl-C stops after the current step (and checkpoints), and running it again resumes
// after the last completed topic, within the interrupted one from its newest checkpoint.
// Bad config: one line naming it, exit code 2.

import { DPOPipeline, PipelineConfig } from "../finetune/pipeline.ts";
import { ConfigError } from "../train/config.ts";
import { DataError } from "../finetune/data.ts";
import { debugLevel } from "../util/env.ts";
import { isInputError, UserError } from "../util/errors.ts";
import { RunFolder } from "../io/run_folder.ts";
import { stat } from "node:fs/promises";

const HELP = `usage: kiln pipeline run <config.yaml>

Per topic of the curriculum: SFT (sft.epochs_per_topic) then DPO (dpo.steps_per_topic) on one
LoRA adapter, an evaluation, and the adapter saved in <output_dir>/topics/<id>/adapter.

config:
  backend: { type: auto|wasm|webgpu, device: auto, dtype: auto }
  model: { name: <Hugging Face folder> }
  sft: { epochs_per_topic: 3, learning_rate: 0.0003, batch_size: 4, ... SFT keys }
  dpo: { steps_per_topic: 100, beta: 0.1, ... DPO keys }
  curriculum: <folder of topic folders: 01-name/sft.jsonl, dpo.jsonl, eval.jsonl>
  topics: [{ id, sft, dpo, eval }]      (instead of curriculum)
  output_dir: runs/pipeline`;

export async function main(argv: string[]): Promise<number> {
  if (argv[0] !== "run" || argv.length !== 2 || argv.includes("-h") || argv.includes("--help")) {
    const asked = argv.includes("-h") || argv.includes("--help");
    (asked ? console.log : console.error)(asked ? HELP : `kiln pipeline: expected "run <config.yaml>"\n\n${HELP}`);
    return asked ? 0 : 2;
  }
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  let folder: RunFolder | undefined;
  try {
    const config = await PipelineConfig.fromFile(argv[1]);
    // running the same config again resumes: the folder is claimed (locked, crash leftovers cleaned), not refused
    const exists = await stat(config.values.outputDir).then(() => true, () => false);
    folder = await RunFolder.open({ path: config.values.outputDir, mode: exists ? "resume" : "new" });
    const pipeline = new DPOPipeline({ config, signal: abort.signal });
    const results = await pipeline.trainCurriculum();
    for (const r of results) {
      const parts = [
        r.resumed ? "done earlier" : null,
        r.sft ? `sft loss ${r.sft.final_loss?.toFixed(4)}` : null,
        r.dpo ? `dpo loss ${r.dpo.final_loss?.toFixed(4)}, accuracy ${r.dpo.metrics["rewards/accuracies"]?.toFixed(3)}` : null,
        r.eval_loss !== undefined ? `eval loss ${r.eval_loss.toFixed(4)}` : null,
        r.preference_accuracy !== undefined ? `preference accuracy ${r.preference_accuracy.toFixed(3)}` : null,
      ].filter(Boolean);
      console.log(`${r.topic}: ${parts.join(", ")} -> ${r.adapter_path}`);
    }
    if (abort.signal.aborted) console.error("kiln pipeline: interrupted; run the same command again to resume");
    await folder.release();
    return 0;
  } catch (e) {
    if (e instanceof UserError || e instanceof ConfigError || e instanceof DataError) await folder?.release({ removeIfEmpty: true }); // a crash keeps the lock: `kiln runs` reports it
    if (debugLevel() > 0) console.error(e);
    console.error(`kiln pipeline: ${(e as Error).message}`);
    return isInputError(e) || e instanceof ConfigError || e instanceof DataError ? 2 : 1;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
