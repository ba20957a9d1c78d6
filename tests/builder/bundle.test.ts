import { beforeAll, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { buildModel, loadConfig } from "../../src/builder/index.ts";
import { exportBundle } from "../../src/builder/bundle.ts";
import { saveModel } from "../../src/builder/saved_model.ts";
import { readGguf } from "../../src/io/gguf.ts";
import { useBackend } from "../../src/tensor/tensor.ts";
import { getBackend } from "../backends.ts";

const ROOT = resolve(import.meta.dir, "../..");
const TOK = join(ROOT, "tests/fixtures/tokenizers/shakespeare_llama3");
const dir = mkdtempSync(join(tmpdir(), "kiln-bundle-"));
beforeAll(async () => useBackend(await getBackend("wasm")));

test("kiln export bundle: HF folder, model.gguf, config + metrics, Dockerfile; its serve.ts answers a completion", async () => {
  const config = await loadConfig({ preset: "tiny", model: { vocabSize: 640, modelType: "llama", bias: false, dropout: 0 } });
  const model = buildModel(config.model, { log: false });
  await saveModel(model, join(dir, "tiny"), { metadata: { config, metrics: { finalLoss: 4.5 } }, tokenizerDir: TOK });
  model.dispose();

  const out = join(dir, "bundle");
  const proc = Bun.spawn([process.execPath, join(ROOT, "src/cli/main.ts"), "export", "bundle", "--model", join(dir, "tiny"), "--output", out, "--quantization", "f32"], { cwd: ROOT, stdout: "pipe", stderr: "pipe", env: { ...process.env, KILN_BACKEND: "wasm" } });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  expect(stderr).toBe("");
  expect(code).toBe(0);
  expect(stdout).toContain(`wrote ${out}`);
  for (const f of ["model/config.json", "model/model.safetensors", "model/tokenizer.json", "model.gguf", "training_config.json", "metrics.json", "serve.ts", "Dockerfile", "README.md", "package.json"]) {
    expect(existsSync(join(out, f))).toBe(true);
  }
  expect(JSON.parse(readFileSync(join(out, "metrics.json"), "utf8"))).toEqual({ finalLoss: 4.5 });
  expect(JSON.parse(readFileSync(join(out, "training_config.json"), "utf8")).model.numLayers).toBe(2);
  const gguf = await readGguf(join(out, "model.gguf"));
  expect(gguf.metadata.get("general.architecture")?.value).toBe("llama");
  const docker = readFileSync(join(out, "Dockerfile"), "utf8").split("\n");
  expect(docker[0]).toMatch(/^FROM oven\/bun:\d+\.\d+\.\d+$/);
  expect(docker).toContain('CMD ["bun", "serve.ts"]');
  expect(docker).toContain("EXPOSE 8080");
  expect(readFileSync(join(out, "README.md"), "utf8")).toContain("bun serve.ts");

  // install it as a user would, with no registry reachable: kiln and its dependencies come from vendor/
  const pkg = JSON.parse(readFileSync(join(out, "package.json"), "utf8"));
  expect(pkg.dependencies.kiln).toMatch(/^file:\.\/vendor\/kiln-\d+\.\d+\.\d+\.tgz$/);
  expect(Object.keys(pkg.overrides).sort()).toEqual(Object.keys(JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).dependencies).sort());
  expect(docker).toContain("COPY vendor ./vendor");
  const install = Bun.spawn([process.execPath, "install", "--production"], {
    cwd: out, stdout: "pipe", stderr: "pipe",
    env: { ...process.env, BUN_CONFIG_REGISTRY: "http://127.0.0.1:9/", BUN_INSTALL_CACHE_DIR: mkdtempSync(join(tmpdir(), "kiln-bundle-cache-")), BUN_CONFIG_NO_CACHE: "1" },
  });
  const [, installErr, installCode] = await Promise.all([new Response(install.stdout).text(), new Response(install.stderr).text(), install.exited]);
  expect(installErr).not.toContain("error:");
  expect(installCode).toBe(0);
  expect(lstatSync(join(out, "node_modules/kiln")).isSymbolicLink()).toBe(false);
  expect(existsSync(join(out, "node_modules/kiln/wasm/build/kernels.wasm"))).toBe(true);
  expect(existsSync(join(out, "node_modules/zod/package.json"))).toBe(true);
  const server = Bun.spawn([process.execPath, join(out, "serve.ts")], { cwd: out, stdout: "pipe", stderr: "pipe", env: { ...process.env, PORT: "0", HOST: "127.0.0.1", KILN_BACKEND: "wasm" } });
  try {
    const reader = server.stdout.getReader();
    let text = "";
    while (!/http:\/\/[^\s]+\/v1/.test(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`serve.ts exited: ${await new Response(server.stderr).text()}`);
      text += new TextDecoder().decode(value);
    }
    const base = /(http:\/\/[^\s]+\/v1)/.exec(text)![1];
    const res = await fetch(`${base}/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "tiny", prompt: "To be", max_tokens: 4, temperature: 0 }) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { choices: { text: string }[]; usage: { completion_tokens: number } };
    expect(typeof body.choices[0].text).toBe("string");
    expect(body.usage.completion_tokens).toBeGreaterThan(0);
  } finally {
    server.kill();
    await server.exited;
  }
});
