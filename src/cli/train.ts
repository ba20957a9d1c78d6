// `kiln train` (also `bun run train`): trains a character-level GPT on a text file. With no flags:
// nanoGPT's baby GPT on Tiny Shakespeare, on the best backend available. Writes a run folder
// (config.json, tokenizer.json, metrics.jsonl, loss.svg, checkpoints/) and prints a sample.

import { parseArgs } from "node:util";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { init } from "../init.ts";
import { seed as seedRng, Rng } from "../tensor/random.ts";
import { GPT } from "../models/gpt.ts";
import { sample } from "../models/generate.ts";
import { CharTokenizer } from "../data/tokenizer.ts";
import { TokenDataset } from "../data/dataset.ts";
import { Trainer } from "../train/trainer.ts";
import { ConfigError, merge, parseRunConfig, readConfigFile, type RunConfig } from "../train/config.ts";
import { env } from "../util/env.ts";

const HELP = `usage: kiln train [options]

Trains a character-level GPT (default: 4 layers, 4 heads, 128 wide, context 64, batch 12,
AdamW lr 1e-3, 2000 iters) on a UTF-8 text file (default: data/tinyshakespeare.txt).

options:
  --data <file>          text file to train on (its characters are the vocabulary)
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
  --out <dir>            run folder (default: runs/<data>-<time>)
  --resume <dir>         continue the run in <dir> from its latest checkpoint
  -h, --help`;

const NUMBER_FLAGS = {
  iters: ["train", "iters"], "batch-size": ["train", "batchSize"], "block-size": ["model", "blockSize"],
  "n-layer": ["model", "nLayer"], "n-head": ["model", "nHead"], "n-embd": ["model", "nEmbd"], dropout: ["model", "dropout"],
  lr: ["train", "lr"], "min-lr": ["train", "minLr"], "warmup-iters": ["train", "warmupIters"],
  "weight-decay": ["train", "weightDecay"], "grad-clip": ["train", "gradClip"], "grad-accum": ["train", "gradAccum"],
  "eval-interval": ["train", "evalInterval"], "eval-iters": ["train", "evalIters"], "log-interval": ["train", "logInterval"],
  "checkpoint-interval": ["train", "checkpointInterval"], seed: ["train", "seed"], "sample-tokens": ["sample", "tokens"],
} as const;

export async function main(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        data: { type: "string" }, config: { type: "string" }, backend: { type: "string" }, device: { type: "string" },
        out: { type: "string" }, resume: { type: "string" }, help: { type: "boolean", short: "h" },
        ...Object.fromEntries(Object.keys(NUMBER_FLAGS).map((k) => [k, { type: "string" as const }])),
      },
      strict: true,
    }));
  } catch (e) {
    console.error(`kiln train: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  try {
    return await run(values);
  } catch (e) {
    if (e instanceof ConfigError) {
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
  if (values.config) input = merge(input, await readConfigFile(values.config as string));
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
  const text = await readFile(config.data, "utf8").catch(() => {
    throw new ConfigError(`data file not found: ${config.data}`);
  });
  const outDir = config.out ?? join("runs", `${basename(config.data).replace(/\.[^.]*$/, "")}-${timestamp()}`);
  const tokenizer = resume
    ? CharTokenizer.fromJSON(await readFile(join(resume, "tokenizer.json"), "utf8"))
    : CharTokenizer.fromText(text);
  const tokens = Int32Array.from(tokenizer.encode(text));
  const dataset = new TokenDataset(tokens, config.model.blockSize);

  // 3. backend, model, trainer
  const backend = await init(config.backend.type, {
    device: config.backend.device,
    threads: config.backend.type !== "webgpu" && config.backend.device ? Number(config.backend.device) || undefined : undefined,
  });
  seedRng(config.train.seed);
  const model = new GPT({ vocabSize: tokenizer.vocabSize, ...config.model });
  await mkdir(outDir, { recursive: true });
  if (!resume) {
    await writeFile(join(outDir, "config.json"), JSON.stringify({ ...config, out: outDir }, null, 2) + "\n");
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
  const trainer = new Trainer({ model, data: dataset, args: config.train, outDir, resume: !!resume, signal: stop.signal });
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
  console.log(`done: ${result.steps} steps in ${result.seconds.toFixed(1)} s (${Math.round(result.tokensPerS).toLocaleString("en-US")} tokens/s); ` +
    `train loss ${result.trainLoss.toFixed(4)}, val loss ${result.valLoss?.toFixed(4)} (mean of ${config.train.finalEvalIters} batches)`);
  if (config.sample.tokens > 0) {
    const prompt = tokenizer.encode(config.sample.prompt.split("").filter((c) => tokenizer.tokenToId(c) !== undefined).join("") || text[0]);
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

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, "").replace(/\..*$/, "").replace("T", "-");
}
