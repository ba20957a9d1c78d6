// `kiln export bundle --model dir --out bundle/`: a deployable folder (src/builder/bundle.ts).
import { outFlag, parseFlags } from "./flags.ts";
import { exportBundle } from "../builder/bundle.ts";
import { init } from "../init.ts";
import { GGUF_QUANTIZATIONS, type GGUFQuantization } from "../io/gguf_export.ts";
import { UserError } from "../util/errors.ts";

const HELP = `usage: kiln export bundle --model <dir> --out <bundle dir> [--quantization <type> | --no-gguf] [--name <name>]

Writes model/ (the Hugging Face folder), model.gguf, training_config.json and metrics.json (from the
model's safetensors metadata), serve.ts (kiln's OpenAI-compatible server), package.json, README.md
and a Dockerfile (oven/bun base).
  --model <dir>            a Hugging Face model folder with its tokenizer
  --out, --output <dir>    the bundle folder
  --quantization <type>    model.gguf's type: ${GGUF_QUANTIZATIONS.join(" | ")} (default f16)
  --no-gguf                leave model.gguf out
  --name <name>            the model name the server answers to (default: the folder's name)`;

export async function main(argv: string[]): Promise<number> {
  const values = parseFlags({ args: argv, options: { model: { type: "string" }, out: { type: "string" }, output: { type: "string" }, quantization: { type: "string" }, "no-gguf": { type: "boolean" }, name: { type: "string" }, help: { type: "boolean", short: "h" } } }, HELP);
  if (!values) return 0;
  const out = outFlag(values);
  if (!values.model || !out) throw new UserError("--model <dir> and --out <bundle dir> are required");
  const q = ((values.quantization as string | undefined) ?? "f16").toLowerCase();
  if (!(GGUF_QUANTIZATIONS as readonly string[]).includes(q)) throw new UserError(`--quantization ${q} is not one of ${GGUF_QUANTIZATIONS.join(", ")}`);
  const backend = await init("wasm");
  const r = await exportBundle(values.model as string, out, { gguf: values["no-gguf"] ? false : (q as GGUFQuantization), name: values.name as string | undefined, backend });
  if (r.ggufSkipped && !values["no-gguf"]) console.warn(`kiln export: model.gguf left out: ${r.ggufSkipped}`);
  console.log(`wrote ${out}: ${r.files.join(", ")}`);
  return 0;
}
