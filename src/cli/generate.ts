// `kiln generate` (also `bun run generate`): continues a prompt with a model from a local Hugging
// Face folder (config.json, model.safetensors, tokenizer.json, generation_config.json) or a
// `kiln train` run folder (char tokenizer, latest checkpoint). Prints the new text on stdout (as it
// comes with --stream) and the token counts and speeds on stderr. Not a server, not a chat loop.

import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { init } from "../init.ts";
import { env } from "../util/env.ts";
import { isInputError, UserError } from "../util/errors.ts";
import { loadPretrained } from "../models/pretrained.ts";
import { GPT } from "../models/gpt.ts";
import { generate, stream, type CausalLM, type GenerateOptions, type GenerateResult } from "../models/generate.ts";
import { CharTokenizer, loadTokenizer, type Tokenizer } from "../data/tokenizer.ts";
import { hasCheckpoint, loadCheckpoint } from "../io/checkpoint.ts";
import { parseFlags, type FlagValues } from "./flags.ts";

const HELP = `usage: kiln generate --model <dir> --prompt "..." [options]

Continues the prompt with a model from a local Hugging Face folder (config.json, model.safetensors,
tokenizer.json, optional generation_config.json) or a \`kiln train\` run folder. Greedy unless the
folder's generation_config.json says do_sample or --temperature, --top-k or --top-p is given.

options:
  --model <dir>               model folder (required)
  --prompt <text>             text to continue (required; "-" reads it from stdin)
  --max-new-tokens <n>        tokens to generate at most (default: generation_config.json, else 128)
  --temperature <x>           0 = greedy; > 0 samples with this temperature
  --top-k <n>                 sample from the k most likely tokens (0 = all; default 50 when sampling)
  --top-p <x>                 nucleus sampling: the most likely tokens holding probability p
  --repetition-penalty <x>    > 1 discourages tokens already in the text (HF semantics)
  --stop <text>               stop string, repeatable: the text ends before it
  --seed <n>                  sampling seed: same seed, same text (default 0)
  --tokenizer <dir>           a tokenizer folder (default: the model folder's)
  --adapter <dir>             apply a LoRA adapter (PEFT folder: adapter_config.json + adapter_model.safetensors)
  --stream                    print the text as it is generated
  --no-cache                  recompute the whole context at every step (slow; for checking)
  --backend <name>            auto | wasm | webgpu (default: $KILN_BACKEND or auto)
  --device <name>             backend device ("cpu" allows a software WebGPU adapter; wasm: threads)
  -h, --help`;

const NUMBER_FLAGS = {
  "max-new-tokens": "maxNewTokens", temperature: "temperature", "top-k": "topK", "top-p": "topP",
  "repetition-penalty": "repetitionPenalty", seed: "seed",
} as const;

export async function main(argv: string[]): Promise<number> {
  const values = parseFlags({
    args: argv,
    options: {
      model: { type: "string" }, prompt: { type: "string" }, stop: { type: "string", multiple: true },
      stream: { type: "boolean" }, "no-cache": { type: "boolean" }, backend: { type: "string" }, device: { type: "string" }, adapter: { type: "string" },
      tokenizer: { type: "string" },
      help: { type: "boolean", short: "h" },
      ...Object.fromEntries(Object.keys(NUMBER_FLAGS).map((k) => [k, { type: "string" as const }])),
    },
  }, HELP);
  if (!values) return 0;
  if (!values.model) throw new UserError("--model <dir> is required");
  if (values.prompt === undefined) throw new UserError('--prompt "..." is required');
  try {
    return await run(values);
  } catch (e) {
    console.error(`kiln generate: ${(e as Error).message}`);
    return isInputError(e) ? 2 : 1;
  }
}

async function run(values: FlagValues): Promise<number> {
  const options: GenerateOptions = { seed: 0, stopStrings: (values.stop as string[] | undefined) ?? [], useCache: !values["no-cache"] };
  for (const [flag, key] of Object.entries(NUMBER_FLAGS)) {
    const raw = values[flag] as string | undefined;
    if (raw === undefined) continue;
    const n = Number(raw);
    if (raw.trim() === "" || !Number.isFinite(n)) throw new UserError(`--${flag} must be a number (got ${JSON.stringify(raw)})`);
    (options as Record<string, number>)[key] = n;
  }
  const dir = values.model as string;
  const info = await stat(dir).catch(() => null);
  if (!info) throw new UserError(`model folder not found: ${dir}`);
  if (!info.isDirectory()) throw new UserError(`--model ${dir} is a file; pass the folder that holds config.json`);
  if (!(await Bun.file(join(dir, "config.json")).exists())) {
    throw new UserError(`${dir} has no config.json: expected a Hugging Face model folder (config.json, model.safetensors, tokenizer.json) or a kiln train run folder`);
  }
  let prompt = values.prompt as string;
  if (prompt === "-") prompt = await new Response(Bun.stdin.stream()).text();

  const backend = await init((values.backend as string | undefined) ?? env("KILN_BACKEND"), {
    device: values.device as string | undefined,
    threads: values.backend !== "webgpu" && values.device ? Number(values.device) || undefined : undefined,
  });
  try {
    const loaded = await loadModelFolder(dir);
    const { model, generationConfig } = loaded;
    const tokenizer = values.tokenizer ? await loadTokenizer(values.tokenizer as string) : loaded.tokenizer;
    if (!tokenizer) throw new UserError(`${dir} has no tokenizer (tokenizer.json, or vocab.json + merges.txt): kiln generate needs one to encode the prompt`);
    options.generationConfig = generationConfig;
    if (values.adapter) {
      const { loadAdapter } = await import("../io/peft.ts");
      await loadAdapter(model as import("../models/index.ts").PretrainedModel, values.adapter as string);
    }
    let result: GenerateResult;
    if (values.stream) {
      const it = stream(model, tokenizer, prompt, options);
      for (;;) {
        const r = await it.next();
        if (r.done) {
          result = r.value;
          break;
        }
        process.stdout.write(r.value);
      }
      process.stdout.write("\n");
    } else {
      result = await generate(model, tokenizer, prompt, options);
      console.log(result.text);
    }
    const t = result.timings;
    const rate = (n: number, ms: number) => (ms > 0 ? `${(n / (ms / 1000)).toFixed(1)} tokens/s` : "-");
    console.error(
      `[${result.promptTokens.length} prompt tokens, ${result.tokens.length} new (${result.finishReason}); ` +
        `prefill ${rate(t.prefillTokens, t.prefillMs)}, decode ${rate(t.decodeTokens, t.decodeMs)}; ${backend.name} (${backend.device})]`,
    );
    (model as { dispose?(): void }).dispose?.();
    return 0;
  } finally {
    backend.dispose();
  }
}

/** A Hugging Face folder through loadPretrained, or a kiln train run folder (config.json with model/train sections). */
async function loadModelFolder(dir: string): Promise<{ model: CausalLM; tokenizer?: Tokenizer; generationConfig?: unknown }> {
  const config = JSON.parse(await readFile(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
  const isRun = config.model_type === undefined && config.architectures === undefined && typeof config.model === "object" && typeof config.train === "object";
  if (!isRun) return loadPretrained(dir);
  const tokenizerFile = join(dir, "tokenizer.json");
  if (!(await Bun.file(tokenizerFile).exists())) throw new UserError(`run folder ${dir} has no tokenizer.json`);
  const tokenizer = CharTokenizer.fromJSON(await readFile(tokenizerFile, "utf8"));
  const checkpoints = join(dir, "checkpoints");
  if (!(await hasCheckpoint(checkpoints))) throw new UserError(`run folder ${dir} has no checkpoint yet (${checkpoints}/latest.json)`);
  const model = new GPT({ ...(config.model as object), vocabSize: tokenizer.vocabSize } as ConstructorParameters<typeof GPT>[0]);
  await loadCheckpoint(checkpoints, { model });
  model.eval();
  return { model, tokenizer };
}
