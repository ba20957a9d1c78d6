// `kiln sft` and `kiln dpo`: LoRA fine-tuning of a local Hugging Face model folder from JSONL data,
// with the config keys of the TypeScript API (TRL/PEFT snake_case, camelCase, or --kebab-case
// flags) from flags and/or a YAML/JSON file. Writes a run folder (metrics.jsonl, loss.svg,
// checkpoints when --save-steps is set) and the adapter as a PEFT folder in <out>/adapter.
// Bad flags, config keys or data rows: one line naming them, exit code 2.

import { join } from "node:path";
import { createBackend } from "../finetune/backend.ts";
import type { FinetuneDType } from "../finetune/model.ts";
import { DataError } from "../finetune/data.ts";
import { ConfigError, readConfigFile } from "../train/config.ts";
import { debugLevel, env } from "../util/env.ts";
import { isInputError, UserError } from "../util/errors.ts";
import { RunFolder } from "../io/run_folder.ts";

const COMMON = `  --model <dir>           Hugging Face model folder (required)
  --data <file.jsonl>     training rows (required)
  --eval <file.jsonl>     held-out rows, evaluated every --eval-steps and at the end
  --config <file>         YAML/JSON with any of the keys below (flags win)
  --out <dir>             run folder (default runs/<verb>-<time>; --output also accepted); must be new or empty
  --overwrite             replace the run already in --out (resume: true continues it instead)
  --adapter <dir>         start from this PEFT adapter (training continues it)
  --backend <name>        auto | wasm | webgpu (default: $KILN_BACKEND or auto)
  --device <name>         backend device ("cpu" allows a software WebGPU adapter)
  --dtype <dtype>         frozen base weights: auto (f32) | float32 | bfloat16 | float16 (16-bit: half the memory)
  --<key> <value>         any config key (--learning-rate 3e-4, --lora-r 8, --target-modules q_proj,v_proj)
  -h, --help`;

const HELP = {
  sft: `usage: kiln sft --model <dir> --data train.jsonl [options]

Supervised LoRA fine-tuning. Rows: {"text"}, {"prompt","completion"} or {"messages":[...]} (chat
template from the model folder); loss on completions / assistant turns.

options:
${COMMON}

keys (defaults): learning_rate 2e-4, num_epochs 3, max_steps, per_device_batch_size 8,
gradient_accumulation_steps 1, max_seq_length 1024, lora_r 8, lora_alpha 16, lora_dropout 0.05,
target_modules q_proj,v_proj (or all-linear), packing false, completion_only_loss true,
eval_steps 0, save_steps 0, logging_steps 10, warmup_steps 0, weight_decay 0, max_grad_norm 1,
lr_scheduler_type cosine, seed 42, skip_invalid false, resume false`,
  dpo: `usage: kiln dpo --model <dir> --data pairs.jsonl [options]

Direct Preference Optimization with LoRA. Rows: {"prompt","chosen","rejected"} (strings or message
lists). The reference is the model as DPO starts (with --adapter: a frozen copy of that adapter).

options:
${COMMON}

keys (defaults): learning_rate 1e-6, num_epochs 1, max_steps, per_device_batch_size 8, beta 0.1,
loss_type sigmoid|ipo|hinge, label_smoothing 0, max_prompt_length 512, max_length 1024,
precompute_ref_log_probs false, lora_r 8, lora_alpha 16, target_modules q_proj,v_proj, ...`,
};

const OWN = new Set(["model", "data", "eval", "config", "out", "output", "adapter", "backend", "device", "dtype", "overwrite"]);

export async function runFinetune(verb: "sft" | "dpo", argv: string[]): Promise<number> {
  let flags: Record<string, string>, keys: Record<string, unknown>;
  try {
    if (argv.includes("-h") || argv.includes("--help")) {
      console.log(HELP[verb]);
      return 0;
    }
    ({ flags, keys } = parseFlags(argv));
    if (!flags.model) throw new UserError("--model <dir> is required");
    if (!flags.data) throw new UserError("--data <file.jsonl> is required");
  } catch (e) {
    console.error(`kiln ${verb}: ${(e as Error).message}\n\n${HELP[verb]}`);
    return 2;
  }
  let folder: RunFolder | undefined;
  try {
    const fromFile = flags.config ? await readConfigFile(flags.config) : {};
    const section = (fromFile[verb] as Record<string, unknown> | undefined) ?? fromFile;
    // the run folder: created exclusively (or resumed, or replaced with --overwrite) and locked for the run
    const resume = (keys.resume ?? section.resume) === true;
    folder = await RunFolder.open({ path: flags.out ?? flags.output, mode: resume ? "resume" : flags.overwrite === "true" ? "overwrite" : "new", name: verb });
    const out = folder.path;
    const config = { ...section, ...keys, output_dir: out };
    const backend = await createBackend(flags.backend ?? env("KILN_BACKEND"), { ...(flags.device ? { device: flags.device } : {}), ...(flags.dtype ? { dtype: flags.dtype as FinetuneDType } : {}) });
    console.error(`kiln ${verb}: ${backend.name} (${backend.compute.device}), model ${flags.model}`);
    const model = await backend.loadModel(flags.model, { adapterPath: flags.adapter });
    const trainer = verb === "sft" ? backend.createSftTrainer(model, config) : backend.createDpoTrainer(model, config);
    const abort = new AbortController();
    const onSignal = () => abort.abort();
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    let result;
    try {
      result = await trainer.train(flags.data, flags.eval, { signal: abort.signal });
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
    if (!result.success) {
      console.error(`kiln ${verb}: training failed: ${result.error_message}`);
      const clear = /^\S+:\d+: |^data\[/.test(result.error_message ?? "");
      if (clear) await folder.release({ removeIfEmpty: true });
      return clear ? 2 : 1;
    }
    const adapter = await trainer.saveAdapter(join(out, "adapter"));
    const metrics = Object.entries(result.metrics).map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`).join(", ");
    console.log(`${result.steps} steps in ${result.training_time_seconds.toFixed(1)} s, final loss ${result.final_loss?.toFixed(4)}${metrics ? `; ${metrics}` : ""}`);
    console.log(`adapter: ${adapter}\nrun folder: ${out} (metrics.jsonl, loss.svg)`);
    await folder.release();
    return 0;
  } catch (e) {
    if (e instanceof UserError || e instanceof ConfigError || e instanceof DataError) await folder?.release({ removeIfEmpty: true }); // a crash keeps the lock: `kiln runs` reports it
    const clear = isInputError(e) || e instanceof DataError;
    if (debugLevel() > 0) console.error(e);
    console.error(`kiln ${verb}: ${(e as Error).message}`);
    return clear ? 2 : 1;
  }
}

/** --own-flag value pairs, and every other --kebab-key value as a config key (numbers, booleans, comma lists parsed). */
function parseFlags(argv: string[]): { flags: Record<string, string>; keys: Record<string, unknown> } {
  const flags: Record<string, string> = {};
  const keys: Record<string, unknown> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) throw new UserError(`unexpected argument "${arg}"`);
    let [name, value] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    if (value === undefined) {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith("--")) value = "true";
      else value = argv[++i];
    }
    if (OWN.has(name)) flags[name] = value;
    else keys[name.replace(/-/g, "_")] = parseValue(name, value);
  }
  return { flags, keys };
}

function parseValue(name: string, v: string): unknown {
  if (v === "true" || v === "false") return v === "true";
  if (v === "null") return null;
  if (/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(v)) return Number(v);
  if (name === "target-modules" && v !== "all-linear" && !/[\\^$*+?()[\]{}|]/.test(v)) return v.split(",");
  if (name === "modules-to-save") return v.split(",");
  return v;
}
