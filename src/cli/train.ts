// `kiln train` (also `bun run train`): trains a character-level GPT on a text file. With no flags:
// nanoGPT's baby GPT on Tiny Shakespeare, on the best backend available. Writes a run folder
// (config.json, tokenizer.json, metrics.jsonl, loss.svg, checkpoints/) and prints a sample.

import { parseArgs } from "node:util";
import { readFile, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { init } from "../init.ts";
import { seed as seedRng, Rng } from "../tensor/random.ts";
import { GPT } from "../models/gpt.ts";
import { sample } from "../models/generate.ts";
import { CharTokenizer } from "../data/tokenizer.ts";
import { TokenDataset } from "../data/dataset.ts";
import { Trainer } from "../train/trainer.ts";
import { ConfigError, merge, parseRunConfig, readConfigFile, type RunConfig } from "../train/config.ts";
import { normalizeRunConfigFile } from "../train/config_keys.ts";
import { debugLevel, env } from "../util/env.ts";
import { UserError } from "../util/errors.ts";
import { RunFolder, RunFolderError } from "../io/run_folder.ts";
import { readTextFile } from "../data/text_file.ts";
import { writeJsonAtomic } from "../io/atomic.ts";

const HELP = `usage: kiln train [options]

Trains a character-level GPT (default: 4 layers, 4 heads, 128 wide, context 64, batch 12,
AdamW lr 1e-3, 2000 iters) on a UTF-8 text file (default: data/tinyshakespeare.txt).

options:
  --data <file>          UTF-8 text file to train on (its characters are the vocabulary)
  --encoding <name>      read --data as utf-8 (default; other bytes are an error) or latin1
  --config <file>        YAML or JSON config (see README); flags override it
  --backend <name>       auto | wasm | webgpu (default: $KILN_BACKEND or auto)
  --device <name>        backend device ("cpu" allows a software WebGPU adapter; wasm: threads)
  --iters <n>            optimizer steps
  --batch-size <n>       sequences per batch
  --block-size <n>       context length
  --n-layer <n>  --n-head <n>  --n-embd <n>  --dropout <p>
  --lr <x>  --min-lr <x>  --warmup-iters <n>  --weight-decay <x>  --grad-clip <x>  --grad-accum <n>
  --eval-interval <n>  --eval-iters <n>  --log-interval <n>  --checkpoint-interval <n>
  --sample-tokens <n>    characters to sample at the end (0: none)
  --seed <n>             seed for init, batches and dropout
  --out <dir>            run folder (default: runs/<data>-<time>); must be new or empty
  --overwrite            replace the run already in --out
  --resume <dir>         continue the run in <dir> from its latest checkpoint
  --resume-from <step>   with --resume: continue from this checkpoint instead of the latest
  -h, --help`;

const NUMBER_FLAGS = {
  iters: ["train", "iters"], "batch-size": ["train", "batchSize"], "block-size": ["model", "blockSize"],
  "n-layer": ["model", "nLayer"], "n-head": ["model", "nHead"], "n-embd": ["model", "nEmbd"], dropout: ["model", "dropout"],
  lr: ["train", "lr"], "min-lr": ["train", "minLr"], "warmup-iters": ["train", "warmupIters"],
  "weight-decay": ["train", "weightDecay"], "grad-clip": ["train", "gradClip"], "grad-accum": ["train", "gradAccum"],
  "eval-interval": ["train", "evalInterval"], "eval-iters": ["train", "evalIters"], "log-interval": ["train", "logInterval"],
  "checkpoint-interval": ["train", "checkpointInterval"], seed: ["train", "seed"], "sample-tokens": ["sample", "tokens"],
} as const;

/** The help, with every numeric flag's default (from the config schema, so it cannot drift). */
function helpText(): string {
  const defaults = parseRunConfig({}) as unknown as Record<string, Record<string, unknown>>;
  const items = Object.entries(NUMBER_FLAGS).map(([flag, [section, key]]) => `--${flag} ${defaults[section][key]}`);
  const lines: string[] = [];
  for (const item of items) {
    if (lines.length && lines[lines.length - 1].length + item.length < 94) lines[lines.length - 1] += `  ${item}`;
    else lines.push(`  ${item}`);
  }
  return `${HELP}\n\ndefaults:\n${lines.join("\n")}`;
}

export async function main(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: negativeValues(argv),
      options: {
        data: { type: "string" }, config: { type: "string" }, backend: { type: "string" }, device: { type: "string" },
        out: { type: "string" }, resume: { type: "string" }, help: { type: "boolean", short: "h" },
        overwrite: { type: "boolean" }, encoding: { type: "string" }, "resume-from": { type: "string" },
        ...Object.fromEntries(Object.keys(NUMBER_FLAGS).map((k) => [k, { type: "string" as const }])),
      },
      strict: true,
    }));
  } catch (e) {
    console.error(`kiln train: ${(e as Error).message}\n\n${helpText()}`);
    return 2;
  }
  if (values.help) {
    console.log(helpText());
    return 0;
  }
  try {
    return await run(values);
  } catch (e) {
    // expected failures (flags, files, run folder, checkpoints): one line, exit 2; KILN_DEBUG=1 shows the stack
    if (e instanceof UserError && debugLevel() === 0) {
      console.error(`kiln train: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

async function run(values: Record<string, string | boolean | undefined>): Promise<number> {
  // 1. the config: defaults <- resumed run's config <- --config file <- flags
  let input: Record<string, unknown> = {};
  const resume = values.resume as string | undefined;
  if (resume) input = await readConfigFile(join(resume, "config.json")).catch(() => {
    throw new ConfigError(`--resume ${resume}: not a run folder (no config.json)`);
  });
  const saved = input; // the resumed run's own config, before --config and flags
  if (values.config) input = merge(input, normalizeRunConfigFile(await readConfigFile(values.config as string), values.config as string));
  const flags: Record<string, Record<string, unknown>> = { train: {}, model: {}, sample: {} };
  for (const [flag, [section, key]] of Object.entries(NUMBER_FLAGS)) {
    const raw = values[flag];
    if (raw === undefined) continue;
    const n = Number(raw);
    if (raw === "" || !Number.isFinite(n)) throw new ConfigError(`--${flag} must be a number (got ${JSON.stringify(raw)})`);
    flags[section][key] = n;
  }
  const top: Record<string, unknown> = { ...flags };
  if (values.data) top.data = values.data;
  if (values.out) top.out = values.out;
  if (resume) top.out = resume;
  const backendType = (values.backend as string | undefined) ?? (input.backend as { type?: string } | undefined)?.type ?? env("KILN_BACKEND");
  top.backend = { type: backendType, ...(values.device ? { device: values.device } : {}) };
  const config = parseRunConfig(merge(input, top));

  // 2. data and tokenizer
  if (values.device !== undefined && !/^(cpu|[1-9]\d*)$/.test(values.device as string))
    throw new ConfigError(`--device ${values.device}: expected "cpu" (allow a software WebGPU adapter) or a wasm thread count`);
  const resumeFrom = values["resume-from"] === undefined ? undefined : Number(values["resume-from"]);
  if (resumeFrom !== undefined && (!resume || !Number.isInteger(resumeFrom) || resumeFrom < 0))
    throw new ConfigError(`--resume-from needs --resume and a step number (got ${JSON.stringify(values["resume-from"])})`);
  if (resume) checkResumedModel(saved, config);
  const text = await readTextFile(config.data, { encoding: values.encoding as string | undefined, what: "--data" });
  const tokenizer = resume
    ? CharTokenizer.fromJSON(await readFile(join(resume, "tokenizer.json"), "utf8").catch(() => {
      throw new RunFolderError(`--resume ${resume}: not a run folder (no tokenizer.json)`);
    }))
    : CharTokenizer.fromText(text);
  const tokens = Int32Array.from(tokenizer.encode(text));
  const dataset = new TokenDataset(tokens, config.model.blockSize); // too little text: an error before any folder exists

  // the run folder: created exclusively (or resumed, or replaced with --overwrite) and locked for the run
  const folder = await RunFolder.open({
    path: resume ?? config.out,
    mode: resume ? "resume" : values.overwrite ? "overwrite" : "new",
    name: basename(config.data).replace(/\.[^.]*$/, ""),
  });
  let code: number;
  try {
    code = await train(folder, config, { tokenizer, tokens, dataset }, { resume, resumeFrom, saved });
  } catch (e) {
    // a bug or a crash keeps the lock, so `kiln runs` can tell the run crashed (the next --resume takes it over)
    if (e instanceof UserError) await folder.release({ removeIfEmpty: true });
    throw e;
  }
  await folder.release();
  return code;
}

async function train(
  folder: RunFolder,
  config: RunConfig,
  { tokenizer, tokens, dataset }: { tokenizer: CharTokenizer; tokens: Int32Array; dataset: TokenDataset },
  { resume, resumeFrom, saved }: { resume?: string; resumeFrom?: number; saved: Record<string, unknown> },
): Promise<number> {
  const outDir = folder.path;
  for (const f of folder.cleaned) console.log(`kiln train: removed ${f} (left by an interrupted save)`);
  if (resume) {
    const step = resumeFrom ?? (await folder.latestStep());
    if (step === null) throw new RunFolderError(`--resume ${resume}: the run has no checkpoint yet (it stopped before its first save); start it again with --out ${resume} --overwrite`);
    if (step >= config.train.iters) {
      console.log(`kiln train: ${resume} already finished: step ${step} of ${config.train.iters}. Nothing to do (pass --iters N with N > ${step} to train further).`);
      return 0;
    }
    await recordResumeChanges(outDir, saved, config);
  }

  // 3. backend, model, trainer
  const backend = await init(config.backend.type, {
    device: config.backend.device,
    threads: config.backend.type !== "webgpu" && config.backend.device ? Number(config.backend.device) || undefined : undefined,
  });
  seedRng(config.train.seed);
  const model = new GPT({ vocabSize: tokenizer.vocabSize, ...config.model });
  if (!resume) {
    await writeJsonAtomic(join(outDir, "config.json"), { ...config, out: outDir });
    await writeFile(join(outDir, "tokenizer.json"), JSON.stringify(tokenizer.toJSON()) + "\n");
  }
  console.log(
    `kiln train: ${(model.numParameters() / 1e6).toFixed(2)}M parameters, vocab ${tokenizer.vocabSize}, ` +
      `${tokens.length.toLocaleString("en-US")} tokens; backend ${backend.name} (${backend.device}); run folder ${outDir}` +
      (resume ? " (resuming)" : ""),
  );
  // Ctrl-C / SIGTERM: the run stops after the current step and saves a checkpoint (the library
  // Trainer takes an AbortSignal; handling process signals is the command's job)
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const trainer = new Trainer({ model, data: dataset, args: config.train, outDir, resume: !!resume, resumeFrom, signal: stop.signal });
  const result = await trainer.fit().finally(() => {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  });

  // 4. report
  if (result.stoppedBy === "interrupt") {
    console.log(`\ninterrupted at step ${result.steps}; checkpoint saved. Resume with: bun run train --resume ${outDir}`);
    backend.dispose();
    return 130;
  }
  if (result.stoppedBy === "nan") {
    backend.dispose();
    return 1;
  }
  console.log(`done: ${result.steps} steps in ${result.trainingTime.toFixed(1)} s (${Math.round(result.tokensPerS).toLocaleString("en-US")} tokens/s training; ` +
    `evaluation ${result.evalSeconds.toFixed(1)} s, checkpoints ${result.checkpointSeconds.toFixed(1)} s); ` +
    `train loss ${result.finalLoss.toFixed(4)}, val loss ${result.finalValLoss?.toFixed(4)} (mean of ${config.train.finalEvalIters} batches)`);
  if (config.sample.tokens > 0) {
    const prompt = tokenizer.encode(config.sample.prompt.split("").filter((c) => tokenizer.tokenToId(c) !== undefined).join("") || tokenizer.decode([tokens[0]]));
    const ids = await sample(model, prompt, {
      maxNewTokens: config.sample.tokens, temperature: config.sample.temperature, topK: config.sample.topK, rng: new Rng(config.train.seed + 2),
    });
    const textOut = tokenizer.decode(ids);
    await writeFile(join(outDir, "sample.txt"), textOut + "\n");
    console.log(`\n--- sample (${config.sample.tokens} characters) ---\n${textOut}\n---`);
  }
  console.log(`run folder: ${outDir} (config.json, metrics.jsonl, loss.svg, checkpoints/, sample.txt)`);
  model.dispose();
  backend.dispose();
  return 0;
}

/** parseArgs reads "--iters -5" as two flags: join a negative number to its flag ("--iters=-5") so the value is checked. */
function negativeValues(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const next = argv[i + 1];
    if (argv[i].startsWith("--") && !argv[i].includes("=") && next !== undefined && /^-\d/.test(next)) out.push(`${argv[i]}=${argv[++i]}`);
    else out.push(argv[i]);
  }
  return out;
}

/** Model flags that contradict the run being resumed are an error naming the flag and the run's value. */
function checkResumedModel(saved: Record<string, unknown>, config: RunConfig): void {
  const before = (saved.model ?? {}) as Record<string, unknown>;
  for (const [key, value] of Object.entries(config.model)) {
    if (before[key] !== undefined && before[key] !== value) {
      const flag = Object.entries(NUMBER_FLAGS).find(([, [sec, k]]) => sec === "model" && k === key)?.[0] ?? `model.${key}`;
      throw new ConfigError(`--${flag} ${value} contradicts the run being resumed (its ${key} is ${before[key]}); a resumed run keeps its model`);
    }
  }
  if (saved.data !== undefined && saved.data !== config.data)
    throw new ConfigError(`--data ${config.data} differs from the run being resumed (its data is ${saved.data})`);
}

/** Training settings changed on resume (--iters, --lr ...) are printed and written to config.json. */
async function recordResumeChanges(outDir: string, saved: Record<string, unknown>, config: RunConfig): Promise<void> {
  const changes: string[] = [];
  for (const section of ["train", "sample"] as const) {
    const before = (saved[section] ?? {}) as Record<string, unknown>;
    for (const [key, value] of Object.entries(config[section])) {
      if (JSON.stringify(before[key]) !== JSON.stringify(value)) changes.push(`${section}.${key} ${JSON.stringify(before[key])} -> ${JSON.stringify(value)}`);
    }
  }
  if (changes.length === 0) return;
  console.log(`kiln train: resuming with changed settings: ${changes.join(", ")} (recorded in config.json)`);
  await writeJsonAtomic(join(outDir, "config.json"), { ...config, out: outDir });
}
