// Flat nanoGPT-style configs ({n_layer, n_head, n_embd, block_size, max_iters, ...}) → the builder's
// sections, with a notice listing what moved and what was left out (keys kiln has no use for).
// Reference: nanoGPT train.py's config globals and model.py GPTConfig.

import { writeFileAtomic } from "../io/atomic.ts";
import { ConfigError } from "../train/config.ts";
import { readConfigFile, sectionsToYaml } from "./config_file.ts";

/** nanoGPT key → [section, builder key] */
const MOVES: Record<string, [string, string]> = {
  n_layer: ["model", "numLayers"], n_head: ["model", "numHeads"], n_embd: ["model", "embeddingDim"],
  block_size: ["model", "maxSeqLength"], dropout: ["model", "dropout"], bias: ["model", "bias"], vocab_size: ["model", "vocabSize"],
  model_type: ["model", "modelType"],
  batch_size: ["training", "batchSize"], learning_rate: ["training", "learningRate"], max_iters: ["training", "maxSteps"],
  eval_interval: ["training", "evalEvery"], eval_iters: ["training", "evalIters"], log_interval: ["training", "logEvery"],
  weight_decay: ["training", "weightDecay"], grad_clip: ["training", "maxGradNorm"], warmup_iters: ["training", "warmupSteps"],
  num_epochs: ["training", "epochs"], epochs: ["training", "epochs"],
  device: ["system", "device"], seed: ["system", "randomSeed"],
};

/** Keys that mark a flat nanoGPT config (a structured one has model/training/system sections). */
const MARKERS = ["n_layer", "n_head", "n_embd", "block_size", "max_iters", "eval_interval", "eval_iters"];

export function isLegacyConfig(raw: Record<string, unknown>): boolean {
  if ("model" in raw || "training" in raw || "system" in raw) return false;
  return MARKERS.some((k) => k in raw);
}

/** The sectioned config for a flat one, and a notice: "n_layer -> model.numLayers, ...; left out: wandb_log". */
export function migrateLegacyObject(raw: Record<string, unknown>): { config: Record<string, Record<string, unknown>>; moved: string[]; dropped: string[]; notice: string } {
  const config: Record<string, Record<string, unknown>> = { model: {}, training: {}, system: {} };
  const moved: string[] = [];
  const dropped: string[] = [];
  for (const [key, value] of Object.entries(raw)) {
    const to = MOVES[key];
    if (!to) {
      dropped.push(key);
      continue;
    }
    let v = value;
    if (key === "model_type" && v === "gpt2") v = "gpt";
    config[to[0]][to[1]] = v;
    moved.push(`${key} -> ${to[0]}.${to[1]}`);
  }
  // nanoGPT's bias=False: kiln's GPT-2 always has biases; keep the model trainable and say so
  if (config.model.bias === false && (config.model.modelType ?? "gpt") === "gpt") {
    config.model.bias = true;
    moved.push("bias false -> true (kiln's GPT-2 has biases)");
  }
  const notice = moved.join(", ") + (dropped.length ? `; left out (no kiln equivalent): ${dropped.join(", ")}` : "");
  return { config, moved, dropped, notice };
}

/**
 * Migrates a flat config file; writes the sectioned one to `out` when given. Returns the new config
 * object and the notice.
 */
export async function migrateLegacyConfig(file: string, out?: string): Promise<{ config: Record<string, Record<string, unknown>>; notice: string }> {
  const raw = await readConfigFile(file);
  if (!isLegacyConfig(raw)) throw new ConfigError(`${file}: not a flat nanoGPT-style config (it has model/training/system sections or none of ${MARKERS.join(", ")})`);
  const { config, notice } = migrateLegacyObject(raw);
  if (out) {
    const text = /\.ya?ml$/i.test(out)
      ? sectionsToYaml(config)
      : JSON.stringify(config, null, 2) + "\n";
    await writeFileAtomic(out, text);
  }
  return { config, notice };
}
