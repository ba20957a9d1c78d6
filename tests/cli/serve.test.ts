// `kiln serve` as a user runs it: it listens on 127.0.0.1 (port 0 = a free one, printed on stderr),
// answers /health, /v1/models and a completion, requires the API key when given one, and exits 0 on
// SIGINT; bad flags and folders are one line on stderr and exit code 2.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { makeTinyModel } from "../serve/tiny_model.ts";
import { useBackend } from "../../src/tensor/tensor.ts";
import { getBackend } from "../backends.ts";

const ROOT = join(import.meta.dir, "..", "..");
const MAIN = join(ROOT, "src", "cli", "main.ts");
let dir: string;

beforeAll(async () => {
  useBackend(await getBackend("wasm"));
  dir = await makeTinyModel({ context: 128 });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function spawn(args: string[]) {
  return Bun.spawn([process.execPath, MAIN, "serve", ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe", env: { ...process.env, KILN_BACKEND: "wasm" } });
}

describe("kiln serve", () => {
  test("serves the folder on loopback with an API key, and stops on SIGINT", async () => {
    const proc = spawn(["--model", dir, "--port", "0", "--served-model-name", "tiny", "--api-key", "k1", "--max-batch", "4", "--max-model-len", "96"]);
    const reader = proc.stderr.getReader();
    let banner = "";
    while (!banner.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      banner += new TextDecoder().decode(value);
    }
    const url = /on (http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(banner)?.[1];
    expect(url, banner).toBeDefined();
    expect(banner).toMatch(/context 96, batch 4, KV pool [\d.]+ MiB, chat template/);
    expect((await fetch(`${url}/health`)).status).toBe(200);
    expect((await fetch(`${url}/v1/models`)).status).toBe(401);
    const auth = { authorization: "Bearer k1", "content-type": "application/json" };
    const models = (await (await fetch(`${url}/v1/models`, { headers: auth })).json()) as { data: { id: string; max_model_len: number }[] };
    expect(models.data.map((m) => [m.id, m.max_model_len])).toEqual([["tiny", 96]]); // --max-model-len below the context of 128
    const long = await fetch(`${url}/v1/completions`, { method: "POST", headers: auth, body: JSON.stringify({ model: "tiny", prompt: "hi", max_tokens: 100 }) });
    expect(long.status).toBe(400);
    const r = await fetch(`${url}/v1/completions`, { method: "POST", headers: auth, body: JSON.stringify({ model: "tiny", prompt: "hi", max_tokens: 5, temperature: 0 }) });
    const body = (await r.json()) as { choices: { finish_reason: string }[]; usage: { completion_tokens: number } };
    expect(r.status).toBe(200);
    expect(body.usage.completion_tokens).toBeGreaterThan(0);
    proc.kill("SIGINT");
    expect(await proc.exited).toBe(0);
  });

  for (const [args, message] of [
    [[], /--model <dir> is required/],
    [["--model", "/nonexistent/folder"], /--model \/nonexistent\/folder: no such folder/],
    [["--model", ".", "--max-batch", "0"], /--max-batch must be an integer >= 1/],
    [["--model", ".", "--port", "http"], /--port must be an integer >= 0/],
    [["--model", ".", "--max-model-len", "0"], /--max-model-len must be an integer >= 1/],
    [["--model", ".", "--bogus"], /Unknown option '--bogus'/],
    [["--model", ".", "--lora-modules", "justaname"], /--lora-modules "justaname": expected name=dir/],
    [["--model", ".", "--lora-modules", "a=/nonexistent"], /--lora-modules a=\/nonexistent: no adapter_config.json there/],
  ] as const) {
    test(`bad input exits 2 with one clear line: ${args.join(" ") || "(none)"}`, async () => {
      const proc = spawn([...args]);
      const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
      expect(code).toBe(2);
      expect(stderr.split("\n")[0]).toMatch(message);
      expect(stderr).not.toMatch(/\n\s+at /); // no stack trace
    });
  }
});
