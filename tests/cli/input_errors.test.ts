// Input mistakes the library reports (a model folder without config.json, a sampling option out of
// range, a tokenizer folder that is not one, a bad flag value) reach the user of every verb as one
// line naming the thing, exit code 2, no stack trace; a bug keeps exit 1.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isInputError, UserError } from "../../src/util/errors.ts";

const ROOT = join(import.meta.dir, "..", "..");
const MAIN = join(ROOT, "src", "cli", "main.ts");
const QWEN = join(ROOT, "tests", "fixtures", "hf", "qwen2");
const tmp = await mkdtemp(join(tmpdir(), "kiln-cli-input-"));
afterAll(() => rm(tmp, { recursive: true, force: true }));

async function kiln(args: string[]) {
  const env: Record<string, string | undefined> = { ...process.env, KILN_BACKEND: "wasm" };
  delete env.KILN_DEBUG;
  const proc = Bun.spawn([process.execPath, MAIN, ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe", env });
  const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
  return { code, stderr };
}

describe("isInputError", () => {
  test("UserErrors and tagged library errors about the input; not other errors", () => {
    expect(isInputError(new UserError("--x is bad"))).toBe(true);
    expect(isInputError(new Error("[config] models/x/config.json not found"))).toBe(true);
    expect(isInputError(new Error("[generate] topP must be in (0, 1], got 7"))).toBe(true);
    expect(isInputError(new Error("safetensors: a.safetensors: header length 9 exceeds the file"))).toBe(true);
    expect(isInputError(new Error("[matmul] shapes [2, 3] and [4, 5] do not match"))).toBe(false);
    expect(isInputError(new TypeError("undefined is not an object"))).toBe(false);
    expect(isInputError("[config] a string, not an Error")).toBe(false);
  });
});

describe("kiln verbs: library input errors exit 2 with one line", () => {
  const notAModel = join(tmp, "not-a-model");
  const cases: [string, () => string[], string][] = [
    ["sft on a folder without config.json", () => ["sft", "--model", notAModel, "--data", join(tmp, "rows.jsonl")], "config.json"],
    ["generate with --top-p out of range", () => ["generate", "--model", QWEN, "--prompt", "x", "--top-p", "7"], "topP must be in (0, 1]"],
    ["tokenizer encode on a folder without a tokenizer", () => ["tokenizer", "encode", "--dir", notAModel, "--text", "hi"], "tokenizer.json"],
    ["tokenizer train with --vocab-size abc", () => ["tokenizer", "train", "--files", join(tmp, "rows.jsonl"), "--vocab-size", "abc", "--out", join(tmp, "tok")], "--vocab-size"],
    ["compare-backends with --steps abc", () => ["compare-backends", "--model", QWEN, "--steps", "abc"], "--steps"],
    ["compare-backends on a folder without config.json", () => ["compare-backends", "--model", notAModel, "--backends", "wasm,wasm"], "config.json"],
  ];
  for (const [name, args, mentions] of cases) {
    test(name, async () => {
      await Bun.write(join(notAModel, "README"), "not a model");
      await writeFile(join(tmp, "rows.jsonl"), '{"text": "hello"}\n');
      const r = await kiln(args());
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(mentions);
      expect(r.stderr).toMatch(new RegExp(`^kiln ${args()[0]}`));
      expect(r.stderr).not.toMatch(/^\s+at /m); // no stack trace
    });
  }
});

test("kiln jobs with a mistyped command exits 2 and creates no queue database", async () => {
  const cwd = await mkdtemp(join(tmp, "jobs-"));
  const env: Record<string, string | undefined> = { ...process.env };
  delete env.KILN_QUEUE;
  const proc = Bun.spawn([process.execPath, MAIN, "jobs", "sumbit", "train"], { cwd, stdout: "pipe", stderr: "pipe", env });
  const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
  expect(code).toBe(2);
  expect(stderr).toContain('unknown jobs command "sumbit"');
  expect(await readdir(cwd)).toEqual([]);
});

describe("unknown flags: one line naming the flag, exit 2 (the verbs on src/cli/flags.ts)", () => {
  for (const verb of ["generate", "serve", "worker", "runs", "data", "export"]) {
    test(`kiln ${verb} --bogus`, async () => {
      const args = verb === "data" ? ["data", "load", "--bogus"] : verb === "export" ? ["export", "gguf", "--bogus"] : [verb, "--bogus"];
      const r = await kiln(args);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split("\n")).toEqual([expect.stringMatching(new RegExp(`^kiln ${verb}: Unknown option '--bogus'`))]);
    });
  }
});
