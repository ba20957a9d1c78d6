#!/usr/bin/env bun
// The kiln command: a table of subcommands, each a module exporting main(argv), imported lazily.
import { debugLevel } from "../util/env.ts";
import { UserError } from "../util/errors.ts";
const COMMANDS: Record<string, { file: string; help: string }> = {
  train: { file: "./train.ts", help: "train a character-level GPT on a text file (default: Tiny Shakespeare)" },
  tokenizer: { file: "./tokenizer.ts", help: "train a byte-level BPE tokenizer (kiln tokenizer train --help)" },
  runs: { file: "./runs.ts", help: "list run folders with their step, losses and status (running, finished, interrupted, crashed)" },
  generate: { file: "./generate.ts", help: "continue a prompt with a Hugging Face model folder or a kiln run folder" },
  serve: { file: "./serve.ts", help: "serve a model folder with an OpenAI-compatible HTTP API (kiln serve --help)" },
  sft: { file: "./sft.ts", help: "LoRA supervised fine-tuning of a Hugging Face model folder (kiln sft --help)" },
  dpo: { file: "./dpo.ts", help: "LoRA preference tuning (DPO) of a Hugging Face model folder (kiln dpo --help)" },
  "compare-backends": { file: "./compare_backends.ts", help: "the same short LoRA SFT on wasm and WebGPU, compared step by step" },
  worker: { file: "./worker.ts", help: "run jobs from a queue (sqlite:// or postgres://); kiln worker --help" },
  jobs: { file: "./jobs.ts", help: "submit, inspect, cancel queued jobs: kiln jobs submit|status|list|cancel|results" },
  data: { file: "./data.ts", help: "raw documents to clean text (kiln data load), text to a .bin token file (kiln data tokenize)" },
  model: { file: "./model.ts", help: "evaluate saved models: loss, perplexity, tokens/s (kiln model evaluate --help)" },
  config: { file: "./config.ts", help: "builder configs: migrate a nanoGPT config, validate/fix, list presets (kiln config --help)" },
  pipeline: { file: "./pipeline.ts", help: "curriculum fine-tuning: per topic SFT then DPO (kiln pipeline run <config.yaml>)" },
  export: { file: "./export.ts", help: "export a model or LoRA adapter for llama.cpp (kiln export gguf --help)" },
};

const [command, ...rest] = process.argv.slice(2);
if (typeof Bun === "undefined") {
  console.error("kiln: the command line needs Bun (https://bun.sh): run `bun src/cli/main.ts ...` (the library itself also runs on Deno)");
  process.exit(2);
}
if (command === "--version" || command === "-v") {
  const pkg = (await import("../../package.json", { with: { type: "json" } })).default as { version: string };
  console.log(`kiln ${pkg.version} (bun ${Bun.version})`);
  process.exit(0);
}
if (!command || command === "--help" || command === "-h" || !(command in COMMANDS)) {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  const list = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.help}`).join("\n");
  const out = `usage: kiln <command> [options]\n\ncommands:\n${list}\n\nkiln <command> --help shows a command's options.`;
  if (command && command !== "--help" && command !== "-h") {
    console.error(`kiln: unknown command "${command}"\n\n${out}`);
    process.exit(2);
  }
  console.log(out);
  process.exit(0);
}
// `--output` is accepted wherever `--out` is (the replaced tool's spelling)
for (let i = 0; i < rest.length; i++) if (rest[i] === "--output" || rest[i].startsWith("--output=")) rest[i] = "--out" + rest[i].slice(8);
// the replaced tool's verb names: `kiln generate text ...` is `kiln generate ...`
if (command === "generate" && rest[0] === "text") rest.shift();
// `kiln train model` is kiln train given a structured builder config
const file = command === "train" && rest[0] === "model" ? (rest.shift(), "./train_model.ts") : COMMANDS[command].file;
const mod = (await import(file)) as { main(argv: string[]): Promise<number | void> };
let code: number | void;
try {
  code = await mod.main(rest);
} catch (e) {
  // an expected failure (a bad flag, environment variable or file, a run folder in the way): one line,
  // no stack (KILN_DEBUG shows it), exit 2; anything else is a bug and keeps its stack
  if (!(e instanceof UserError) || debugLevel() > 0) throw e;
  console.error(`kiln ${command}: ${e.message}`);
  code = 2;
}
process.exit(code ?? 0);
