#!/usr/bin/env bun
// The kiln command: a table of subcommands, each a module exporting main(argv), imported lazily.
import { EnvError, debugLevel } from "../util/env.ts";
const COMMANDS: Record<string, { file: string; help: string }> = {
  train: { file: "./train.ts", help: "train a character-level GPT on a text file (default: Tiny Shakespeare)" },
  tokenizer: { file: "./tokenizer.ts", help: "train a byte-level BPE tokenizer (kiln tokenizer train --help)" },
  generate: { file: "./generate.ts", help: "continue a prompt with a Hugging Face model folder or a kiln run folder" },
  serve: { file: "./serve.ts", help: "serve a model folder with an OpenAI-compatible HTTP API (kiln serve --help)" },
};

const [command, ...rest] = process.argv.slice(2);
if (!command || command === "--help" || command === "-h" || !(command in COMMANDS)) {
  const list = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.help}`).join("\n");
  const out = `usage: kiln <command> [options]\n\ncommands:\n${list}\n\nkiln <command> --help shows a command's options.`;
  if (command && command !== "--help" && command !== "-h") {
    console.error(`kiln: unknown command "${command}"\n\n${out}`);
    process.exit(2);
  }
  console.log(out);
  process.exit(0);
}
const mod = (await import(COMMANDS[command].file)) as { main(argv: string[]): Promise<number | void> };
let code: number | void;
try {
  code = await mod.main(rest);
} catch (e) {
  if (!(e instanceof EnvError) || debugLevel() > 0) throw e;
  console.error(`kiln ${command}: ${e.message}`); // a bad environment variable: one line, no stack
  code = 2;
}
process.exit(code ?? 0);
