// `kiln train model --config config.json --data data.txt --out model/`: `kiln train` given a builder
// config (src/builder): a BPE tokenizer trained on the data when none is given, the model built from
// config.model (GPT-2 or Llama style), the engine's trainModel, and the result saved as a Hugging
// Face folder (config + metrics in its safetensors metadata) with the run folder in <out>/run.
import { outFlag, parseFlags } from "./flags.ts";
import { join } from "node:path";
import { mkdir } from "node:fs/promises";
import { existsSync, statSync } from "node:fs";
import { buildModel, fixConfig, loadConfig, toTrainingConfig, validateConfig, type BuilderConfig } from "../builder/index.ts";
import { exportBundle } from "../builder/bundle.ts";
import { saveModel } from "../builder/saved_model.ts";
import { TextDataset } from "../builder/text_dataset.ts";
import { trainBpeFiles } from "../data/bpe_train.ts";
import { readTextFile } from "../data/text_file.ts";
import { sidecarPath, tokenFileInfo } from "../data/token_file.ts";
import { loadTokenizer } from "../data/tokenizer.ts";
import { init } from "../init.ts";
import { trainModel } from "../train/trainer.ts";
import { env } from "../util/env.ts";
import { UserError } from "../util/errors.ts";

const HELP = `usage: kiln train model (--config <file> | --preset <name>) --data <data.txt|data.bin> --out <dir> [--tokenizer <dir>]

Trains the model a builder config describes (kiln config --help; presets: kiln config presets) on a
UTF-8 text file, or on a token file written by \`kiln data tokenize\` (data.bin + its data.bin.json
sidecar; memory-mapped, so it may be bigger than memory; --tokenizer must be the one that wrote it).
Validation uses training.evalIters batches spread over the last 10% (default for a token file: 20;
for text: the whole split). Without --tokenizer a byte-level BPE of model.vocabSize tokens is
trained on the text first (<out>/tokenizer). Writes <out> as a Hugging Face folder (config and metrics in the
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
  const dataPath = values.data as string;
  const tokenFile = /\.bin$/i.test(dataPath);
  let tokenizerDir = values.tokenizer as string | undefined;
  if (tokenFile) checkTokenFile(dataPath, tokenizerDir);
  const text = tokenFile ? undefined : await readTextFile(dataPath, { what: "--data" });
  if (!tokenizerDir) {
    tokenizerDir = join(out, "tokenizer");
    const t = await trainBpeFiles([values.data as string], tokenizerDir, { vocabSize: config.model.vocabSize, specialTokens: ["<|endoftext|>"] });
    console.log(`trained a BPE tokenizer: ${t.vocab.size} tokens (${tokenizerDir})`);
  }
  const tokenizer = await loadTokenizer(tokenizerDir);
  if (tokenFile) {
    const vocab = tokenFileInfo(dataPath, statSync(dataPath).size).vocabSize;
    if (vocab !== tokenizer.vocabSize) throw new UserError(`--data ${dataPath}: ${sidecarPath(dataPath)} says vocabSize ${vocab} but the tokenizer ${tokenizerDir} has ${tokenizer.vocabSize} tokens (tokenize with the same tokenizer)`);
  }
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
  const data = new TextDataset(text !== undefined ? [text] : dataPath, { blockSize: config.model.maxSeqLength, tokenizer, trainSplit: 0.9 });
  // a token file's validation split may be millions of windows: each evaluation takes evalIters batches of it
  const evalIters = config.training.evalIters ?? (tokenFile ? 20 : undefined);
  const val = evalIters !== undefined ? data.val.sample(evalIters * config.training.batchSize) : data.val;
  await mkdir(join(out, "run"), { recursive: true });
  const result = await trainModel(model, { train: data.train, val: val.length ? val : undefined }, toTrainingConfig(config), { outDir: join(out, "run") });
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

/** A token file needs its sidecar (dtype, vocabSize) and the tokenizer that wrote it. */
function checkTokenFile(path: string, tokenizerDir: string | undefined): void {
  if (!existsSync(path)) throw new UserError(`--data ${path}: token file not found`);
  if (!existsSync(sidecarPath(path))) throw new UserError(`--data ${path}: no ${sidecarPath(path)} sidecar (dtype, vocabSize, tokens); write token files with kiln data tokenize`);
  if (!tokenizerDir) throw new UserError(`--data ${path} is a token file: --tokenizer <dir> (the tokenizer that wrote it) is required`);
  if (tokenFileInfo(path, statSync(path).size).vocabSize === undefined) throw new UserError(`--data ${path}: ${sidecarPath(path)} has no vocabSize; write token files with kiln data tokenize`);
}
