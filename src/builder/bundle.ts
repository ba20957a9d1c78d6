// exportBundle: a trained model as a folder that deploys on its own — the Hugging Face folder
// (model/), model.gguf for llama.cpp, the training config and metrics, serve.ts (the serving
// issue's server: createServer + loadServedModel, OpenAI-compatible), a README and a Dockerfile on
// the oven/bun image. The bundle depends on kiln through its package.json.

import { copyFile, mkdir, readdir } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import type { Backend } from "../backend/backend.ts";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.ts";
import { exportGguf, type GGUFQuantization } from "../io/gguf_export.ts";
import { readSafetensors } from "../io/safetensors.ts";
import { UserError } from "../util/errors.ts";

export interface ExportBundleOptions {
  /** the GGUF's type (default "f16"); false: no model.gguf */
  gguf?: GGUFQuantization | false;
  /** the name the server answers to (default: the model folder's name) */
  name?: string;
  backend?: Backend;
}

export interface BundleResult {
  files: string[];
  /** why model.gguf is absent, when it is */
  ggufSkipped?: string;
}

const KILN_VERSION = "0.1.0";
const BUN_IMAGE = "oven/bun:1.4.5";

export async function exportBundle(modelDir: string, outDir: string, options: ExportBundleOptions = {}): Promise<BundleResult> {
  let entries: string[];
  try {
    entries = await readdir(modelDir);
  } catch {
    throw new UserError(`--model ${modelDir}: no such folder`);
  }
  if (!entries.includes("config.json") || !entries.includes("model.safetensors")) throw new UserError(`--model ${modelDir}: expected a Hugging Face folder (config.json, model.safetensors, tokenizer.json)`);
  if (!entries.includes("tokenizer.json")) throw new UserError(`--model ${modelDir}: no tokenizer.json (the bundle's server needs one)`);
  if (resolve(outDir) === resolve(modelDir)) throw new UserError("--out must differ from --model");
  const name = options.name ?? basename(resolve(modelDir));
  await mkdir(join(outDir, "model"), { recursive: true });
  const files: string[] = [];
  for (const f of entries) {
    if (/\.(json|safetensors|txt|jinja|model)$/.test(f)) {
      await copyFile(join(modelDir, f), join(outDir, "model", f));
      files.push(`model/${f}`);
    }
  }
  const meta = (await readSafetensors(join(modelDir, "model.safetensors"))).metadata;
  const parsed = (k: string) => (meta[k] === undefined ? undefined : JSON.parse(meta[k]));
  await writeJsonAtomic(join(outDir, "training_config.json"), parsed("kiln.config") ?? null);
  await writeJsonAtomic(join(outDir, "metrics.json"), parsed("kiln.metrics") ?? null);
  files.push("training_config.json", "metrics.json");
  let ggufSkipped: string | undefined;
  if (options.gguf !== false) {
    try {
      await exportGguf(modelDir, join(outDir, "model.gguf"), { quantization: options.gguf ?? "f16", backend: options.backend });
      files.push("model.gguf");
    } catch (e) {
      ggufSkipped = (e as Error).message;
    }
  } else ggufSkipped = "not asked for";
  await writeFileAtomic(join(outDir, "serve.ts"), serveScript(name));
  await writeJsonAtomic(join(outDir, "package.json"), { name: `${name}-server`, private: true, type: "module", scripts: { start: "bun serve.ts" }, dependencies: { kiln: KILN_VERSION } });
  await writeFileAtomic(join(outDir, "Dockerfile"), dockerfile());
  await writeFileAtomic(join(outDir, "README.md"), readme(name, files.includes("model.gguf")));
  files.push("serve.ts", "package.json", "Dockerfile", "README.md");
  return { files, ggufSkipped };
}

function serveScript(name: string): string {
  return `// Serves ./model with kiln's OpenAI-compatible server: bun serve.ts (PORT, HOST, KILN_BACKEND).
import { join } from "node:path";
import { createServer, init, loadServedModel } from "kiln";

await init(process.env.KILN_BACKEND ?? "auto");
const entry = await loadServedModel(join(import.meta.dir, "model"), { name: process.env.MODEL_NAME ?? ${JSON.stringify(name)} });
const api = createServer({ models: [entry] });
const server = Bun.serve({ port: Number(process.env.PORT ?? 8080), hostname: process.env.HOST ?? "0.0.0.0", fetch: api.fetch });
console.log(\`serving \${entry.name} on http://\${server.hostname}:\${server.port}/v1\`);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, async () => {
    await api.close();
    server.stop();
    process.exit(0);
  });
}
`;
}

function dockerfile(): string {
  return `FROM ${BUN_IMAGE}
WORKDIR /app
COPY package.json ./
RUN bun install --production
COPY . .
ENV PORT=8080 HOST=0.0.0.0 KILN_BACKEND=wasm
EXPOSE 8080
CMD ["bun", "serve.ts"]
`;
}

function readme(name: string, gguf: boolean): string {
  return `# ${name}

Made with kiln (\`kiln export bundle\`).

- \`model/\` — the Hugging Face folder (config.json, model.safetensors, tokenizer files)
${gguf ? "- `model.gguf` — the same model for llama.cpp (`llama-cli -m model.gguf -p \"Hello\"`)\n" : ""}- \`training_config.json\`, \`metrics.json\` — how it was trained and how it ended
- \`serve.ts\` — an OpenAI-compatible server (\`/v1/completions\`, \`/v1/chat/completions\`, \`/v1/models\`)

Run it:

\`\`\`sh
bun install && PORT=8080 bun serve.ts
curl localhost:8080/v1/completions -H 'content-type: application/json' -d '{"model": "${name}", "prompt": "Hello", "max_tokens": 20}'
docker build -t ${name.toLowerCase().replace(/[^a-z0-9._-]/g, "-")} . && docker run -p 8080:8080 ${name.toLowerCase().replace(/[^a-z0-9._-]/g, "-")}
\`\`\`
`;
}
