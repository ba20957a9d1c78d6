// `kiln model evaluate --model dir --data file [--compare other/]`: loss, perplexity and tokens/s of
// saved models on a text file (tokenized with the model's tokenizer) or a .bin token file.
import { parseArgs } from "node:util";
import { evaluateModel } from "../builder/evaluate.ts";
import { loadSavedModel } from "../builder/saved_model.ts";
import { readTokenFile } from "../builder/text_dataset.ts";
import { readTextFile } from "../data/text_file.ts";
import { UserError } from "../util/errors.ts";

const HELP = `usage: kiln model evaluate --model <dir> --data <file> [--compare <dir>] [options]

Mean next-token loss, perplexity and tokens/s over the data in windows of the model's context.
  --model <dir>          a Hugging Face folder (kiln train / saveModel output)
  --data <file>          a UTF-8 text file, or a .bin token file (kiln data tokenize)
  --compare <dir>        a second model, evaluated on the same tokens
  --tokenizer <dir>      tokenizer folder (default: the model's)
  --block-size <n>       window length (default: the model's context)
  --batch-size <n>       windows per batch (default 8)
  --max-batches <n>      stop after n batches`;

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === "-h" || sub === "--help") {
    console.log(HELP);
    return 0;
  }
  if (sub !== "evaluate") throw new UserError(`unknown subcommand "${sub}" (evaluate)`);
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: rest, options: { model: { type: "string" }, data: { type: "string" }, compare: { type: "string" }, tokenizer: { type: "string" }, "block-size": { type: "string" }, "batch-size": { type: "string" }, "max-batches": { type: "string" }, help: { type: "boolean", short: "h" } } }));
  } catch (e) {
    throw new UserError((e as Error).message);
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!values.model || !values.data) throw new UserError("--model and --data are required");
  const int = (flag: string) => {
    const v = values[flag];
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!(Number.isInteger(n) && n > 0)) throw new UserError(`--${flag}: expected a positive integer, got "${v}"`);
    return n;
  };
  const { init } = await import("../init.ts");
  const { env } = await import("../util/env.ts");
  await init(env("KILN_BACKEND"));
  let tokens: Int32Array | Uint16Array | Uint32Array | undefined;
  for (const dir of [values.model as string, ...(values.compare ? [values.compare as string] : [])]) {
    const { model, tokenizer, config } = await loadSavedModel(dir, { tokenizerDir: values.tokenizer as string | undefined });
    if (!tokens) {
      if (/\.bin$/i.test(values.data as string)) tokens = readTokenFile(values.data as string);
      else {
        if (!tokenizer) throw new UserError(`${dir} has no tokenizer: pass --tokenizer or a .bin --data`);
        tokens = Int32Array.from(tokenizer.encode(await readTextFile(values.data as string, { what: "--data" })));
      }
    }
    const blockSize = Math.min(int("block-size") ?? config.blockSize, Math.max(1, tokens.length - 1));
    const r = await evaluateModel(model, tokens, { blockSize, batchSize: int("batch-size"), maxBatches: int("max-batches") });
    console.log(`${dir}: loss ${r.loss.toFixed(4)}  perplexity ${r.perplexity.toFixed(2)}  ${r.tokens} tokens  ${r.tokensPerS.toFixed(0)} tokens/s`);
    model.dispose();
  }
  return 0;
}
