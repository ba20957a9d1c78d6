// `kiln serve`: an OpenAI-compatible HTTP API (src/serve) for a local Hugging Face model folder, on
// Bun.serve. Listens on 127.0.0.1 unless told otherwise; Ctrl-C stops taking requests, cancels what
// is running and exits.

import { stat } from "node:fs/promises";
import { join } from "node:path";
import { init } from "../init.ts";
import { env } from "../util/env.ts";
import { isInputError, UserError } from "../util/errors.ts";
import { createServer } from "../serve/server.ts";
import { loadServedAdapter, loadServedModel, type LoadedModelEntry } from "../serve/load.ts";
import { parseFlags, type FlagValues } from "./flags.ts";

const HELP = `usage: kiln serve --model <dir or file.gguf> [options]

Serves a local Hugging Face model folder (config.json, model.safetensors, tokenizer.json) with an
OpenAI-compatible API: GET /v1/models, POST /v1/completions, POST /v1/chat/completions (streaming
with "stream": true), GET /health, GET /metrics (Prometheus). Concurrent requests share decode steps.

options:
  --model <dir>               model folder, or a llama.cpp .gguf file (required)
  --served-model-name <name>  the name clients pass as "model" (default: the folder's name)
  --lora-modules <name=dir>   also serve the base with this PEFT LoRA adapter merged in, as "name"
                              (repeatable, or comma-separated); each adapter is its own model: its
                              own copy of the weights and its own decode batch
  --host <addr>               address to listen on (default 127.0.0.1: this machine only)
  --port <n>                  port (default 8080; 0 picks a free one)
  --max-batch <n>             sequences decoded together (default 8)
  --max-queue <n>             sequences waiting before requests get 429 (default 64)
  --max-model-len <n>         positions per sequence, prompt + output (default: the model's context);
                              the KV pool takes max-batch × this many positions per served model
  --max-body-bytes <n>        larger request bodies get 413 (default 1048576)
  --request-timeout <s>       abort a request still generating after this many seconds (default 600)
  --api-key <key>             require "Authorization: Bearer <key>" on /v1/* (default: $KILN_API_KEY, else none)
  --backend <name>            auto | wasm | webgpu (default: $KILN_BACKEND or auto)
  --device <name>             backend device ("cpu" allows a software WebGPU adapter; wasm: threads)
  -h, --help`;

const INT_FLAGS = ["port", "max-batch", "max-queue", "max-model-len", "max-body-bytes", "request-timeout"] as const;

export async function main(argv: string[]): Promise<number> {
  const values = parseFlags({
    args: argv,
    options: {
      model: { type: "string" }, "served-model-name": { type: "string" }, "lora-modules": { type: "string", multiple: true }, host: { type: "string" }, "api-key": { type: "string" },
      backend: { type: "string" }, device: { type: "string" }, help: { type: "boolean", short: "h" },
      ...Object.fromEntries(INT_FLAGS.map((k) => [k, { type: "string" as const }])),
    },
  }, HELP);
  if (!values) return 0;
  if (!values.model) throw new UserError("--model <dir> is required");
  try {
    return await run(values);
  } catch (e) {
    console.error(`kiln serve: ${(e as Error).message}`);
    if (process.env.KILN_DEBUG) console.error(e);
    return isInputError(e) ? 2 : 1;
  }
}

async function run(values: FlagValues): Promise<number> {
  const ints: Partial<Record<(typeof INT_FLAGS)[number], number>> = {};
  for (const flag of INT_FLAGS) {
    const raw = values[flag] as string | undefined;
    if (raw === undefined) continue;
    const n = Number(raw);
    if (raw.trim() === "" || !Number.isInteger(n) || n < 0 || (flag !== "port" && flag !== "max-queue" && n === 0)) {
      throw new UserError(`--${flag} must be an integer${flag === "port" || flag === "max-queue" ? " >= 0" : " >= 1"} (got ${JSON.stringify(raw)})`);
    }
    ints[flag] = n;
  }
  const loras = ((values["lora-modules"] as string[] | undefined) ?? []).flatMap((v) => v.split(",")).map((spec) => {
    const eq = spec.indexOf("=");
    if (eq <= 0 || eq === spec.length - 1) throw new UserError(`--lora-modules ${JSON.stringify(spec)}: expected name=dir`);
    return { name: spec.slice(0, eq), dir: spec.slice(eq + 1) };
  });
  for (const l of loras) {
    if (!(await stat(join(l.dir, "adapter_config.json")).catch(() => null))) throw new UserError(`--lora-modules ${l.name}=${l.dir}: no adapter_config.json there (a PEFT LoRA folder)`);
  }
  const dir = values.model as string;
  const info = await stat(dir).catch(() => null);
  const gguf = dir.toLowerCase().endsWith(".gguf");
  if (gguf ? !info?.isFile() : !info?.isDirectory()) throw new UserError(`--model ${dir}: no such ${gguf ? "file" : "folder"}`);
  if (!gguf && !(await Bun.file(join(dir, "config.json")).exists())) throw new UserError(`--model ${dir} has no config.json: expected a Hugging Face model folder or a .gguf file`);
  const backend = await init((values.backend as string | undefined) ?? env("KILN_BACKEND"), {
    device: values.device as string | undefined,
    threads: values.backend !== "webgpu" && values.device ? Number(values.device) || undefined : undefined,
  });
  const entry = await loadServedModel(dir, { name: values["served-model-name"] as string | undefined, backend });
  const context = entry.model.config.blockSize;
  if (ints["max-model-len"] !== undefined && (ints["max-model-len"] < 2 || ints["max-model-len"] > context)) {
    throw new UserError(`--max-model-len must be in 2..${context} (the model's context), got ${ints["max-model-len"]}`);
  }
  const entries: LoadedModelEntry[] = [entry];
  for (const l of loras) entries.push(await loadServedAdapter(dir, l.dir, l.name, { backend }));
  const names = entries.map((e) => e.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined) throw new UserError(`two served models are named ${JSON.stringify(twice)} (--served-model-name / --lora-modules)`);
  const api = createServer({
    models: entries,
    maxBatch: ints["max-batch"],
    maxQueue: ints["max-queue"],
    maxModelLen: ints["max-model-len"],
    maxBodyBytes: ints["max-body-bytes"],
    requestTimeoutMs: ints["request-timeout"] !== undefined ? ints["request-timeout"] * 1000 : undefined,
    apiKey: (values["api-key"] as string | undefined) ?? (env("KILN_API_KEY") || undefined),
  });
  const server = Bun.serve({
    hostname: (values.host as string | undefined) ?? "127.0.0.1",
    port: ints.port ?? 8080,
    fetch: api.fetch,
    idleTimeout: 0, // a long generation streams nothing for a while on slow backends: let the request timeout decide
    error: () => Response.json({ error: { message: "internal error", type: "server_error", param: null, code: null } }, { status: 500 }),
  });
  console.error(`kiln serve: ${names.join(", ")} on http://${server.hostname}:${server.port}/v1 (${backend.name}, ${backend.device}; context ${api.models[0].batcher.contextLength}, batch ${ints["max-batch"] ?? 8}, KV pool ${(api.models.reduce((s, m) => s + m.batcher.poolBytes(), 0) / 2 ** 20).toFixed(1)} MiB${entry.chatTemplate ? ", chat template" : ", no chat template"})`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  console.error("kiln serve: shutting down");
  await server.stop(false);
  await api.close();
  backend.dispose();
  return 0;
}
