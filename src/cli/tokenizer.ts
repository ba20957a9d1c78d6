// `kiln tokenizer train|encode`: train a byte-level BPE on text files into a Hugging Face tokenizer folder
// (tokenizer.json + tokenizer_config.json), or encode text with any tokenizer folder to check it.
// Not the tokenizer itself: see src/data/bpe_train.ts and src/data/tokenizer.ts.
import { parseArgs } from "node:util";
import { PATTERNS, trainBpeFiles } from "../data/bpe_train.ts";
import { loadTokenizer } from "../data/tokenizer.ts";
import { isInputError, UserError } from "../util/errors.ts";

const HELP = `usage: kiln tokenizer train --files <a.txt> [<b.txt> ...] --vocab-size <n> --out <dir> [options]
       kiln tokenizer encode --dir <tokenizer dir> (--text <string> | --file <path>) [--no-special]

train: learns a byte-level BPE (special tokens, then the 256 bytes, then merges) and writes
<dir>/tokenizer.json + tokenizer_config.json, readable by kiln and Hugging Face tokenizers.
  --files <paths...>       UTF-8 text files to learn from
  --input <dir|file>       documents to learn from, read as \`kiln data load --clean\` reads them
                           (.txt .md .html .json .jsonl .csv, recursive)
  --vocab-size <n>         final vocabulary size, special and byte tokens included
  --out <dir>              output folder
  --min-frequency <n>      stop when the best pair is rarer than this (default 2)
  --special <tok>          a special token, repeatable (default: <|endoftext|>); the first is eos/bos
  --pattern <name|regex>   pre-tokenizer: ${Object.keys(PATTERNS).join(" | ")} | an Oniguruma regex (default gpt2)
  --by-line                count pre-tokens line by line, as Hugging Face's trainer does (same merges)

encode: prints the ids (and the token count and round-trip check) of a text.
  -h, --help`;

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === "-h" || sub === "--help") {
    console.log(HELP);
    return 0;
  }
  let values: Record<string, string | boolean | string[] | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: rest,
      options: {
        files: { type: "string", multiple: true },
        input: { type: "string" },
        "vocab-size": { type: "string" },
        out: { type: "string" },
        "min-frequency": { type: "string" },
        special: { type: "string", multiple: true },
        pattern: { type: "string" },
        dir: { type: "string" },
        text: { type: "string" },
        file: { type: "string" },
        "no-special": { type: "boolean" },
        "by-line": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: true, // `--files a.txt b.txt`: the extra paths arrive as positionals
      strict: true,
    }));
  } catch (e) {
    console.error(`kiln tokenizer: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  try {
    if (sub === "train") return await train(values, positionals);
    if (sub === "encode") return await encode(values);
  } catch (e) {
    console.error(`kiln tokenizer ${sub}: ${(e as Error).message}`);
    return isInputError(e) ? 2 : 1;
  }
  console.error(`kiln tokenizer: unknown subcommand "${sub}"\n\n${HELP}`);
  return 2;
}

function positiveInt(name: string, v: unknown): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new UserError(`--${name} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

async function train(values: Record<string, unknown>, positionals: string[]): Promise<number> {
  const files = [...((values.files as string[] | undefined) ?? []), ...positionals];
  if (values.input !== undefined) files.push(await documentsAsFile(values.input as string));
  if (files.length === 0 || values["vocab-size"] === undefined || values.out === undefined) {
    console.error(`kiln tokenizer train: --files, --vocab-size and --out are required\n\n${HELP}`);
    return 2;
  }
  const vocabSize = positiveInt("vocab-size", values["vocab-size"]);
  const minFrequency = values["min-frequency"] === undefined ? 2 : positiveInt("min-frequency", values["min-frequency"]);
  const specialTokens = (values.special as string[] | undefined) ?? ["<|endoftext|>"];
  const t0 = performance.now();
  const trained = await trainBpeFiles(files, values.out as string, {
    vocabSize,
    minFrequency,
    specialTokens,
    pattern: (values.pattern as string | undefined) ?? "gpt2",
    byLine: !!values["by-line"],
  });
  const secs = (performance.now() - t0) / 1000;
  console.log(
    `wrote ${values.out}/tokenizer.json: ${trained.vocab.size} tokens (${specialTokens.length} special, 256 bytes, ` +
      `${trained.merges.length} merges) from ${files.length} file(s) in ${secs.toFixed(1)} s`,
  );
  if (trained.vocab.size < vocabSize) console.log(`(stopped early: no pair occurs ${minFrequency}+ times)`);
  return 0;
}

async function encode(values: Record<string, unknown>): Promise<number> {
  if (values.dir === undefined || (values.text === undefined) === (values.file === undefined)) {
    console.error(`kiln tokenizer encode: --dir and one of --text / --file are required\n\n${HELP}`);
    return 2;
  }
  const tok = await loadTokenizer(values.dir as string);
  const text = (values.text as string | undefined) ?? (await Bun.file(values.file as string).text());
  const t0 = performance.now();
  const ids = tok.encode(text, { addSpecialTokens: !values["no-special"] });
  const ms = performance.now() - t0;
  const bytes = Buffer.byteLength(text);
  if (ids.length <= 200) console.log(JSON.stringify(ids));
  console.log(
    `${ids.length} tokens, ${bytes} bytes (${(bytes / Math.max(ids.length, 1)).toFixed(2)} bytes/token), ` +
      `${(bytes / 1e6 / (ms / 1000)).toFixed(2)} MB/s, round trip ${tok.decode(ids) === text ? "exact" : "differs (normalizer or special tokens)"}`,
  );
  return 0;
}

/** The documents under `input` (kiln data load's reader, cleaned), as one temporary text file. */
async function documentsAsFile(input: string): Promise<string> {
  const { DocumentLoader, formatReport } = await import("../builder/documents.ts");
  const { mkdtemp } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const r = await new DocumentLoader({ cleanText: true }).loadDirectory(input);
  for (const line of formatReport(r).filter((l) => l.startsWith("skipped"))) console.log(line);
  const file = join(await mkdtemp(join(tmpdir(), "kiln-tokenizer-")), "documents.txt");
  await Bun.write(file, r.texts.join("\n\n"));
  return file;
}
