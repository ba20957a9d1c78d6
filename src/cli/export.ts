// `kiln export gguf`: a Hugging Face model folder as a llama.cpp GGUF file (--quantization), or a
// PEFT LoRA adapter folder as a llama.cpp LoRA adapter GGUF (--adapter, with --base). The export
// itself is src/io/gguf_export.ts and src/io/gguf_adapter.ts; this file parses flags and reports.
import { outFlag, parseFlags } from "./flags.ts";
import { stat } from "node:fs/promises";
import { init } from "../init.ts";
import { exportGguf, GGUF_QUANTIZATIONS, type GGUFQuantization } from "../io/gguf_export.ts";
import { exportGgufAdapter, GGUF_ADAPTER_TYPES, type GGUFAdapterType } from "../io/gguf_adapter.ts";
import { UserError, describeFsError, isUserFsError } from "../util/errors.ts";
import { debugLevel } from "../util/env.ts";

const HELP = `usage: kiln export gguf --model <dir> --out <model.gguf> [--quantization <type>] [--name <name>]
       kiln export gguf --adapter <peft dir> [--base <model dir>] --out <adapter.gguf> [--quantization <type>]
       kiln export bundle --model <dir> --out <bundle dir> (kiln export bundle --help)

gguf: writes a GGUF v3 file for llama.cpp (architectures gpt2, llama, qwen2; Mistral as llama) with
the tokenizer (tokenizer.ggml.*) and chat template. 1-D tensors stay F32; rows a block does not
divide fall back as llama.cpp's tools do (Q8_0/Q4_0/Q4_1 -> F16, Q4_K -> Q5_0, Q6_K -> Q8_0).
  --model <dir>            a Hugging Face model folder (config.json, model.safetensors, tokenizer.json)
  --out <file>             the GGUF file to write (--output accepted)
  --quantization <type>    ${GGUF_QUANTIZATIONS.join(" | ")} (default f16); for --adapter: ${GGUF_ADAPTER_TYPES.join(" | ")}
  --name <name>            general.name (default: the folder's name)
  --adapter <dir>          a PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors):
                           writes a llama.cpp LoRA adapter (llama-cli --lora)
  --base <dir>             the adapter's base model folder (default: its base_model_name_or_path)
  -h, --help`;

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === "-h" || sub === "--help") {
    // asked for help: stdout, 0; no format at all is a usage mistake: stderr, 2 (as kiln jobs)
    (sub ? console.log : console.error)(HELP);
    return sub ? 0 : 2;
  }
  if (sub === "bundle") return (await import("./export_bundle.ts")).main(rest);
  if (sub !== "gguf") throw new UserError(`unknown export format ${JSON.stringify(sub)} (kiln export gguf ... | kiln export bundle ...)`);
  const values = parseFlags({
      args: rest,
      options: {
        model: { type: "string" }, out: { type: "string" }, output: { type: "string" }, quantization: { type: "string" },
        name: { type: "string" }, adapter: { type: "string" }, base: { type: "string" }, help: { type: "boolean", short: "h" },
      },
      strict: true,
    }, HELP);
  if (!values) return 0;
  const out = outFlag(values);
  if (!out) throw new UserError("--out <file.gguf> is required");
  const quantization = ((values.quantization as string | undefined) ?? "f16").toLowerCase();
  try {
    if (values.adapter) {
      if (values.model) throw new UserError("--model and --adapter are exclusive (the adapter's base model is --base)");
      if (!(GGUF_ADAPTER_TYPES as readonly string[]).includes(quantization)) throw new UserError(`--quantization ${quantization}: an adapter is one of ${GGUF_ADAPTER_TYPES.join(", ")}`);
      await folder("--adapter", values.adapter as string);
      const { layers } = await exportGgufAdapter(values.adapter as string, out, {
        baseModel: values.base as string | undefined, quantization: quantization as GGUFAdapterType, name: values.name as string | undefined,
      });
      console.log(`wrote ${out}: LoRA adapter, ${layers} layers, ${quantization.toUpperCase()}`);
      return 0;
    }
    if (!values.model) throw new UserError("--model <dir> (or --adapter <dir>) is required");
    if (!(GGUF_QUANTIZATIONS as readonly string[]).includes(quantization)) throw new UserError(`--quantization ${quantization} is not one of ${GGUF_QUANTIZATIONS.join(", ")}`);
    await folder("--model", values.model as string);
    const backend = await init("wasm");
    const { types, fallbacks } = await exportGguf(values.model as string, out, { quantization: quantization as GGUFQuantization, name: values.name as string | undefined, backend });
    for (const f of fallbacks) console.warn(`kiln export: ${f}`);
    console.log(`wrote ${out}: ${Object.entries(types).map(([t, n]) => `${n} ${t}`).join(", ")} tensors`);
    return 0;
  } catch (e) {
    // a problem with the user's files (a bad config, tokenizer or adapter; a missing folder): one line
    const message = (e as Error)?.message ?? String(e);
    if (e instanceof UserError || debugLevel() > 0) throw e;
    if (isUserFsError(e)) throw new UserError(describeFsError(e));
    if (/^\[(gguf|config|peft|pretrained|tokenizer)\]|^(gguf|safetensors): /.test(message)) throw new UserError(message);
    throw e;
  }
}

async function folder(flag: string, path: string): Promise<void> {
  const s = await stat(path).catch(() => null);
  if (!s?.isDirectory()) throw new UserError(`${flag} ${path}: ${s ? "is a file, not a folder" : "no such folder"}`);
}
