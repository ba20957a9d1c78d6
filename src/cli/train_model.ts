// `kiln train model --config config.json --data data.txt --out model/`: `kiln train` given a builder
// config (src/builder): a BPE tokenizer trained on the data when none is given, the model built from
// config.model (GPT-2 or Llama style), the engine's trainModel, and the result saved as a Hugging
// Face folder (config + metrics in its safetensors metadata) with the run folder in <out>/run.
import { outFlag, parseFlags } from "./flags.ts";
import { join } from "node:path";
import { mkdir } from "node:fs/promises";
import { buildModel, fixConfig, loadConfig, toTrainingConfig, validateConfig, type BuilderConfig } from "../builder/index.ts";
import { exportBundle } from "../builder/bundle.ts";
import { saveModel } from "../builder/saved_model.ts";
import { TextDataset } from "../builder/text_dataset.ts";
import { trainBpeFiles } from "../data/bpe_train.ts";
import { readTextFile } from "../data/text_file.ts";
import { loadTokenizer } from "../data/tokenizer.ts";
import { init } from "../init.ts";
import { trainModel } from "../train/trainer.ts";
import { env } from "../util/env.ts";
import { UserError } from "../util/errors.ts";

const HELP = `usage: kiln train model (--config <file> | --preset <name>) --data <data.txt> --out <dir> [--tokenizer <dir>]

Trains the model a builder config describes (kiln config --help; presets: kiln config presets) on a
UTF-8 text file. Without --tokenizer a byte-level BPE of model.vocabSize tokens is trained on the
data first (<out>/tokenizer). Writes <out> as a Hugging Face folder (config and metrics in the
safetensors metadata), the run folder <out>/run, and <out>/bundle when training.exportBundle is set.
  --max-steps <n>        override training.maxSteps
  --backend <name>       auto | wasm | webgpu (default: the config's system.device)`;

export async function main(argv: string[]): Promise<number> {
  const values = parseFlags({ args: argv, options: { config: { type: "string" }, preset: { type: "string" }, data: { type: "string" }, out: { type: "string" }, output: { type: "string" }, tokenizer: { type: "string" }, "max-steps": { type: "string" }, backend: { type: "string" }, help: { type: "boolean", short: "h" } } }, HELP);
  if (!values) return 0;
  const out = outFlag(values);
  if (!values.data || !out || !(values.config || values.preset)) throw new UserError("--config (or --preset), --data and --out are required");
  const overrides = values["max-steps"] ? { training: { maxSteps: Number(values["max-steps"]) } } : {};
  let config: BuilderConfig = values.config ? await loadConfig(values.config as string) : await loadConfig({ preset: values.preset as never, ...overrides });
  if (values.config && values["max-steps"]) config.training.maxSteps = Number(values["max-steps"]);
  const text = await readTextFile(values.data as string, { what: "--data" });
  let tokenizerDir = values.tokenizer as string | undefined;
  if (!tokenizerDir) {
    tokenizerDir = join(out, "tokenizer");
    const t = await trainBpeFiles([values.data as string], tokenizerDir, { vocabSize: config.model.vocabSize, specialTokens: ["<|endoftext|>"] });
    console.log(`trained a BPE tokenizer: ${t.vocab.size} tokens (${tokenizerDir})`);
  }
  const tokenizer = await loadTokenizer(tokenizerDir);
  const { errors } = validateConfig(config, { tokenizerVocabSize: tokenizer.vocabSize });
  if (errors.length) {
    const fixed = fixConfig(config, errors, { tokenizerVocabSize: tokenizer.vocabSize });
    for (const f of fixed.fixes) console.log(`config: ${f}`);
    if (fixed.remaining.length) throw new UserError(fixed.remaining.map((e) => `${e.field}: ${JSON.stringify(e.value)} ${e.message}`).join("; "));
    config = fixed.config;
  }
  const device = config.system.device;
  await init((values.backend as string | undefined) ?? env("KILN_BACKEND") ?? (device === "cpu" || device === "wasm" ? "wasm" : device === "auto" ? "auto" : "webgpu"), { seed: config.system.randomSeed });
  const model = buildModel(config.model);
  const data = new TextDataset([text], { blockSize: config.model.maxSeqLength, tokenizer, trainSplit: 0.9 });
  await mkdir(join(out, "run"), { recursive: true });
  const result = await trainModel(model, { train: data.train, val: data.val.length ? data.val : undefined }, toTrainingConfig(config), { outDir: join(out, "run") });
  const metrics = { finalLoss: result.finalLoss, finalValLoss: result.finalValLoss, steps: result.steps, epochs: result.epochs };
  await saveModel(model, out, { metadata: { config, metrics }, tokenizerDir });
  console.log(`saved ${out}: final loss ${result.finalLoss.toFixed(4)}${result.finalValLoss !== undefined ? `, val loss ${result.finalValLoss.toFixed(4)}` : ""} after ${result.steps} steps`);
  if (config.training.exportBundle) {
    const b = await exportBundle(out, join(out, "bundle"));
    console.log(`wrote ${join(out, "bundle")}: ${b.files.length} files`);
  }
  model.dispose();
  return 0;
}
