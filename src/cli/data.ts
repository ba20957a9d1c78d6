// `kiln data load|tokenize`: raw documents → one clean text file (src/builder/documents.ts), and a
// text file → a nanoGPT .bin token file, streamed (src/builder/tokenize_file.ts).
import { outFlag, parseFlags } from "./flags.ts";
import { DocumentLoader, formatReport } from "../builder/documents.ts";
import { tokenizeFile } from "../builder/tokenize_file.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { UserError } from "../util/errors.ts";

const HELP = `usage: kiln data load --input <dir|file> --out <data.txt> [--clean] [--dedupe] [options]
       kiln data tokenize --tokenizer <dir> --input <data.txt> --out <data.bin>

load: reads .txt .md .html .json .jsonl .csv .pdf .docx recursively (.pdf through the optional
package unpdf, .docx through mammoth, each file in a child process), prints a line per file (kept,
skipped and why), and writes the documents separated by a blank line.
  --input <path>          folder (recursive) or one file
  --out, --output <file>  the text file to write
  --clean                 NFC, control characters, whitespace runs, boilerplate lines
  --dedupe                remove exact and near-duplicate documents (MinHash + LSH)
  --threshold <j>         Jaccard similarity of near-duplicates (default 0.8)
  --min-length <n>        drop documents shorter than n characters
  --json-field <name>     the text field of .json/.jsonl records (default text)
  --csv-column <name>     the text column of .csv files (default text)
  --encoding <name>       utf-8 (default: non-UTF-8 files are skipped with the byte offset) or latin1
  --timeout <s>           the most seconds one .pdf/.docx file may take (default 60)

tokenize: a UTF-8 text file → raw uint16 token ids (uint32 when the vocabulary exceeds 65536), the
layout of nanoGPT's train.bin, plus <out>.json (dtype, vocabSize, tokens); memory stays bounded.
  --tokenizer <dir>       a tokenizer folder (tokenizer.json)
  --threads <n>           worker threads encoding chunks (default: the cores, at most 4)
  --input <file>  --out, --output <file>`;

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === "-h" || sub === "--help") {
    console.log(HELP);
    return 0;
  }
  const values = parseFlags({
      args: rest,
      options: {
        input: { type: "string" }, out: { type: "string" }, output: { type: "string" }, clean: { type: "boolean" }, dedupe: { type: "boolean" },
        threshold: { type: "string" }, "min-length": { type: "string" }, "json-field": { type: "string" }, "csv-column": { type: "string" },
        encoding: { type: "string" }, timeout: { type: "string" }, threads: { type: "string" }, tokenizer: { type: "string" }, help: { type: "boolean", short: "h" },
      },
    }, HELP);
  if (!values) return 0;
  const out = outFlag(values);
  if (!values.input) throw new UserError("--input is required");
  if (!out) throw new UserError("--out (or --output) is required");
  if (sub === "load") {
    const threshold = num(values.threshold, "--threshold", (v) => v > 0 && v <= 1);
    const minLength = num(values["min-length"], "--min-length", (v) => Number.isInteger(v) && v >= 0);
    const timeout = num(values.timeout, "--timeout", (v) => v > 0);
    const loader = new DocumentLoader({
      cleanText: !!values.clean, removeDuplicates: !!values.dedupe, dedupeThreshold: threshold, minLength,
      jsonField: values["json-field"] as string | undefined, csvColumn: values["csv-column"] as string | undefined, encoding: values.encoding as string | undefined,
      timeoutMs: timeout === undefined ? undefined : timeout * 1000,
    });
    const r = await loader.loadDirectory(values.input as string);
    for (const line of formatReport(r)) console.log(line);
    if (!r.texts.length) throw new UserError(`--input ${values.input}: no document kept (see the report above)`);
    await writeFileAtomic(out, r.texts.join("\n\n") + "\n");
    console.log(`wrote ${out}`);
    return 0;
  }
  if (sub === "tokenize") {
    if (!values.tokenizer) throw new UserError("--tokenizer <dir> is required");
    const threads = num(values.threads, "--threads", (v) => Number.isInteger(v) && v >= 1);
    const t0 = performance.now();
    const r = await tokenizeFile(values.tokenizer as string, values.input as string, out, { threads });
    const s = (performance.now() - t0) / 1000;
    console.log(`wrote ${out}: ${r.tokens} tokens (${r.dtype}), ${(r.tokens / s / 1e6).toFixed(2)} M tokens/s on ${r.threads} thread(s)`);
    return 0;
  }
  throw new UserError(`unknown subcommand "${sub}" (load, tokenize)`);
}

function num(v: unknown, flag: string, ok: (v: number) => boolean): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!ok(n)) throw new UserError(`${flag}: invalid value "${v}"`);
  return n;
}
