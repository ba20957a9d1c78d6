// exportBundle: a trained model as a folder that deploys on its own — the Hugging Face folder
// (model/), model.gguf for llama.cpp, the training config and metrics, serve.ts (the serving
// issue's server: createServer + loadServedModel, OpenAI-compatible), a README and a Dockerfile on
// the oven/bun image. kiln is not on a registry: the bundle carries it as a tarball (vendor/, packed
// with `bun pm pack` from the running kiln) with its dependencies' tarballs, and its package.json
// points at them (a file: dependency, and overrides for kiln's own dependencies), so `bun install`
// (or `npm install`) in the bundle needs no registry; kiln's optional packages (WebGPU's Dawn
// build, the PDF/DOCX readers) are fetched when a registry is reachable and skipped when not.

import { existsSync } from "node:fs";
import { copyFile, mkdir, readdir, readFile, rm } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
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

// from the module URL, not Bun's import.meta.dir: Deno imports this file through kiln's index
const KILN_ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
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
  const vendor = await vendorKiln(join(outDir, "vendor"));
  files.push(...vendor.files);
  await writeJsonAtomic(join(outDir, "package.json"), { name: `${name}-server`, private: true, type: "module", scripts: { start: "bun serve.ts" }, dependencies: { kiln: vendor.kiln }, overrides: vendor.overrides });
  await writeFileAtomic(join(outDir, "Dockerfile"), dockerfile());
  await writeFileAtomic(join(outDir, "README.md"), readme(name, files.includes("model.gguf")));
  files.push("serve.ts", "package.json", "Dockerfile", "README.md");
  return { files, ggufSkipped };
}

/**
 * kiln and its dependencies as tarballs in `dir`: kiln packed from its own folder (package.json
 * "files": the sources, WGSL kernels and the built wasm), each dependency from where kiln resolves
 * it. Returns the file: specs for the bundle's package.json.
 */
async function vendorKiln(dir: string): Promise<{ kiln: string; overrides: Record<string, string>; files: string[] }> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const pkg = JSON.parse(await readFile(join(KILN_ROOT, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
  if (!existsSync(join(KILN_ROOT, "wasm/build/kernels.wasm"))) throw new UserError(`${KILN_ROOT}/wasm/build/kernels.wasm is missing: run \`npm run build:wasm\` in kiln before bundling`);
  const files: string[] = [];
  const pack = async (from: string) => {
    const proc = Bun.spawn([process.execPath, "pm", "pack", "--ignore-scripts", "--quiet", "--destination", dir], { cwd: from, stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    const tgz = out.trim().split("\n").pop() ?? "";
    if (code !== 0 || !tgz.endsWith(".tgz")) throw new Error(`[bundle] bun pm pack in ${from} failed: ${(err || out).trim().split("\n").pop()}`);
    files.push(`vendor/${basename(tgz)}`);
    return `file:./vendor/${basename(tgz)}`;
  };
  const kiln = await pack(KILN_ROOT);
  const overrides: Record<string, string> = {};
  for (const dep of Object.keys(pkg.dependencies ?? {})) overrides[dep] = await pack(packageDir(dep));
  return { kiln, overrides, files };
}

/** The installed folder of `name` as kiln resolves it: node_modules/<name> in kiln's folder or above. */
function packageDir(name: string): string {
  for (let at = KILN_ROOT; ; at = dirname(at)) {
    const candidate = join(at, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) return candidate;
    if (dirname(at) === at) throw new Error(`[bundle] kiln's dependency ${name} is not installed (npm install in kiln)`);
  }
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
COPY vendor ./vendor
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
- \`vendor/\` — kiln and its dependencies as tarballs: \`bun install\` here needs no registry

Run it:

\`\`\`sh
bun install && PORT=8080 bun serve.ts
curl localhost:8080/v1/completions -H 'content-type: application/json' -d '{"model": "${name}", "prompt": "Hello", "max_tokens": 20}'
docker build -t ${name.toLowerCase().replace(/[^a-z0-9._-]/g, "-")} . && docker run -p 8080:8080 ${name.toLowerCase().replace(/[^a-z0-9._-]/g, "-")}
\`\`\`
`;
}
