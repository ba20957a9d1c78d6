// `kiln generate` as a user runs it: text on stdout (the same as generate() in-process), --stream
// prints the same text, a seed repeats, stop strings cut, a kiln train run folder works, and a
// missing folder, config, weights or tokenizer, or a bad flag, is named with a non-zero exit code.

import { describe, expect, test } from "bun:test";
import { copyFile, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadPretrained } from "../../src/models/pretrained.ts";
import { generate } from "../../src/models/generate.ts";
import { useBackend } from "../../src/tensor/tensor.ts";
import { getBackend } from "../backends.ts";

const ROOT = join(import.meta.dir, "..", "..");
const MAIN = join(ROOT, "src", "cli", "main.ts");
const LLAMA = join(ROOT, "tests", "fixtures", "hf", "llama");
const GPT2 = join(ROOT, "tests", "fixtures", "hf", "gpt2");

async function kiln(args: string[]) {
  const proc = Bun.spawn([process.execPath, MAIN, ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe", env: { ...process.env, KILN_BACKEND: "wasm" } });
  const [code, stdout, stderr] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  return { code, stdout, stderr };
}

describe("kiln generate", () => {
  test("prints the greedy continuation generate() makes in-process, and the token counts on stderr", async () => {
    useBackend(await getBackend("wasm"));
    const { model, tokenizer, generationConfig } = await loadPretrained(GPT2);
    const want = await generate(model, tokenizer!, "the cat", { maxNewTokens: 12, generationConfig });
    model.dispose();
    const r = await kiln(["generate", "--model", GPT2, "--prompt", "the cat", "--max-new-tokens", "12"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(want.text + "\n");
    expect(r.stderr).toMatch(/\d+ prompt tokens, \d+ new \((length|stop)\); prefill [\d.]+ tokens\/s, decode [\d.]+ tokens\/s; wasm/);
  });

  test("--stream prints the same text; the same seed gives the same sample; --no-cache agrees", async () => {
    const args = ["generate", "--model", LLAMA, "--prompt", "Once upon", "--max-new-tokens", "16", "--temperature", "0.9", "--top-k", "40", "--seed", "7"];
    const plain = await kiln(args);
    const streamed = await kiln([...args, "--stream"]);
    const uncached = await kiln([...args, "--no-cache"]);
    expect(plain.code).toBe(0);
    expect(streamed.stdout).toBe(plain.stdout);
    expect(uncached.stdout).toBe(plain.stdout);
    expect(plain.stderr).toContain("16 new (length)");
  });

  test("--stop cuts the text before the stop string", async () => {
    const full = await kiln(["generate", "--model", GPT2, "--prompt", "the cat", "--max-new-tokens", "12"]);
    const text = full.stdout.slice(0, -1);
    // two characters from the middle of the (random model's) text, not half of a broken character
    const at = Array.from({ length: text.length }, (_, i) => i).find((i) => i >= 2 && /^[^\uFFFD]{2}$/u.test(text.slice(i, i + 2)))!;
    const stop = text.slice(at, at + 2);
    expect(stop.length).toBe(2);
    const r = await kiln(["generate", "--model", GPT2, "--prompt", "the cat", "--max-new-tokens", "12", "--stop", "never-there", "--stop", stop]);
    expect(r.stdout).toBe(text.slice(0, text.indexOf(stop)) + "\n");
    expect(r.stderr).toContain("(stop)");
  });

  test("a kiln train run folder generates from its latest checkpoint", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kiln-gen-"));
    const data = join(dir, "text.txt");
    await writeFile(data, "To be, or not to be, that is the question.\n".repeat(40));
    const run = join(dir, "run");
    const small = ["--backend", "wasm", "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "4", "--eval-iters", "1"];
    const t = await kiln(["train", "--data", data, "--out", run, "--iters", "2", "--eval-interval", "0", "--sample-tokens", "0", ...small]);
    expect(t.code).toBe(0);
    const r = await kiln(["generate", "--model", run, "--prompt", "To be", "--max-new-tokens", "40"]);
    expect(r.code).toBe(0);
    expect([...r.stdout.slice(0, -1)].length).toBe(40); // one character per token; blockSize 16 < 45 positions: the window slides
  });

  test("missing folder, config, weights or tokenizer and bad flags are named", async () => {
    const nope = await kiln(["generate", "--model", "/no/such/folder", "--prompt", "x"]);
    expect(nope.code).toBe(2);
    expect(nope.stderr).toContain("model folder not found: /no/such/folder");

    const empty = await mkdtemp(join(tmpdir(), "kiln-gen-"));
    const noConfig = await kiln(["generate", "--model", empty, "--prompt", "x"]);
    expect(noConfig.code).toBe(2);
    expect(noConfig.stderr).toContain("has no config.json");

    await copyFile(join(LLAMA, "config.json"), join(empty, "config.json"));
    const noWeights = await kiln(["generate", "--model", empty, "--prompt", "x"]);
    expect(noWeights.code).toBe(2);
    expect(noWeights.stderr).toContain("model.safetensors");

    await copyFile(join(LLAMA, "model.safetensors"), join(empty, "model.safetensors"));
    const noTokenizer = await kiln(["generate", "--model", empty, "--prompt", "x"]);
    expect(noTokenizer.code).toBe(2);
    expect(noTokenizer.stderr).toContain("has no tokenizer");

    const badFlag = await kiln(["generate", "--model", LLAMA, "--prompt", "x", "--top-p", "lots"]);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toContain('--top-p must be a number (got "lots")');
    const badValue = await kiln(["generate", "--model", LLAMA, "--prompt", "x", "--top-p", "1.5"]);
    expect(badValue.code).toBe(2);
    expect(badValue.stderr).toContain("topP must be in (0, 1]");
    const noPrompt = await kiln(["generate", "--model", LLAMA]);
    expect(noPrompt.code).toBe(2);
    expect(noPrompt.stderr).toContain("--prompt");
    const help = await kiln(["generate", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("usage: kiln generate");
  });
});
