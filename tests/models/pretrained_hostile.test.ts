// Hostile model folders for loadPretrained: the tiny Qwen2 fixture (tests/fixtures/hf/qwen2) with one
// flaw in config.json, generation_config.json or the tokenizer. Every case must end in an Error that
// names the file and the problem (parse errors included), before any garbage reaches the model.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadPretrained } from "../../src/models/pretrained.ts";
import { useBackend } from "../../src/tensor/tensor.ts";
import { getBackend } from "../backends.ts";

const FIXTURE = join(import.meta.dir, "../fixtures/hf/qwen2");
const tmp = await mkdtemp(join(tmpdir(), "kiln-pretrained-hostile-"));
afterAll(() => rm(tmp, { recursive: true, force: true }));
beforeAll(async () => useBackend(await getBackend("wasm")));

// biome-ignore lint: the files are loosely typed JSON
type Json = any;
const read = async (name: string): Promise<Json> => Bun.file(join(FIXTURE, name)).json();
let n = 0;

/** A copy of the fixture folder with `files` (name -> JSON value, or raw text) replaced. */
async function folder(files: Record<string, Json>): Promise<string> {
  const dir = join(tmp, `case${n++}`);
  await mkdir(dir);
  await symlink(join(FIXTURE, "model.safetensors"), join(dir, "model.safetensors"));
  for (const f of ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"]) {
    if (!(f in files)) await copyFile(join(FIXTURE, f), join(dir, f));
    else if (files[f] !== undefined) await writeFile(join(dir, f), typeof files[f] === "string" ? files[f] : JSON.stringify(files[f]));
  }
  return dir;
}

async function expectRejected(files: Record<string, Json>, file: string, ...parts: string[]): Promise<void> {
  const dir = await folder(files);
  const error = await loadPretrained(dir).then(
    (r) => {
      r.model.dispose();
      return null;
    },
    (e: unknown) => e as Error,
  );
  if (error === null) throw new Error(`loaded without an error: ${JSON.stringify(files).slice(0, 200)}`);
  expect(error).toBeInstanceOf(Error);
  expect(error.message).toContain(join(dir, file));
  for (const p of parts) expect(error.message).toContain(p);
}

const config = await read("config.json");
const generation = await read("generation_config.json");
const tokenizer = await read("tokenizer.json");
const withConfig = (patch: Json) => ({ "config.json": { ...config, ...patch } });

describe("loadPretrained hostile config.json", () => {
  test("the base folder loads", async () => {
    const { model, tokenizer: tok } = await loadPretrained(await folder({}));
    expect(tok?.vocabSize).toBe(300);
    model.dispose();
  });
  test("not JSON, truncated, empty, a list, nested 100k deep", async () => {
    await expectRejected({ "config.json": "{nope" }, "config.json", "is not valid JSON");
    await expectRejected({ "config.json": JSON.stringify(config).slice(0, 100) }, "config.json", "is not valid JSON");
    await expectRejected({ "config.json": "" }, "config.json", "is not valid JSON");
    await expectRejected({ "config.json": "[1]" }, "config.json", "must be a JSON object");
    await expectRejected({ "config.json": "[".repeat(100_000) + "]".repeat(100_000) }, "config.json", "must be a JSON object");
    await expectRejected({ "config.json": '{"a":'.repeat(100_000) + "1" + "}".repeat(99_999) }, "config.json", "is not valid JSON");
  });
  test("wrong types, negative or fractional sizes, heads that do not divide, NaN", async () => {
    await expectRejected(withConfig({ vocab_size: "300" }), "config.json", "vocab_size");
    await expectRejected(withConfig({ hidden_size: -64 }), "config.json", "hidden_size");
    await expectRejected(withConfig({ num_hidden_layers: 1.5 }), "config.json", "num_hidden_layers");
    await expectRejected(withConfig({ num_key_value_heads: 3 }), "config.json", "num_key_value_heads = 3");
    await expectRejected({ "config.json": JSON.stringify(config).replace('"rms_norm_eps": 1e-06', '"rms_norm_eps": NaN').replace('"rms_norm_eps":0.000001', '"rms_norm_eps":NaN') }, "config.json", "not valid JSON");
  });
  test("unknown architecture and rope_scaling are named", async () => {
    await expectRejected(withConfig({ architectures: ["BananaForCausalLM"] }), "config.json", '"BananaForCausalLM"');
    await expectRejected(withConfig({ rope_scaling: { type: "banana", factor: 2 } }), "config.json", "rope_scaling");
  });
});

describe("loadPretrained hostile generation_config.json", () => {
  test("not JSON, not an object", async () => {
    await expectRejected({ "generation_config.json": "{" }, "generation_config.json", "is not valid JSON");
    await expectRejected({ "generation_config.json": "[]" }, "generation_config.json", "is not a JSON object");
  });
  test("fields of the wrong type or range are named", async () => {
    await expectRejected({ "generation_config.json": { ...generation, temperature: "hot" } }, "generation_config.json", "temperature");
    await expectRejected({ "generation_config.json": { ...generation, top_p: 2 } }, "generation_config.json", "top_p");
    await expectRejected({ "generation_config.json": { ...generation, max_new_tokens: -5 } }, "generation_config.json", "max_new_tokens");
  });
  test("token ids outside the vocabulary are named", async () => {
    await expectRejected({ "generation_config.json": { ...generation, eos_token_id: 1e9 } }, "generation_config.json", "eos_token_id", "1000000000", "vocab_size 300");
    await expectRejected({ "generation_config.json": { ...generation, eos_token_id: [299, -1] } }, "generation_config.json", "eos_token_id", "-1");
    await expectRejected({ "generation_config.json": { ...generation, pad_token_id: 300 } }, "generation_config.json", "pad_token_id");
  });
});

describe("loadPretrained tokenizer <-> model", () => {
  test("a tokenizer with more ids than vocab_size is an error naming both sizes", async () => {
    const big = structuredClone(tokenizer);
    big.added_tokens.push({ id: 300, content: "<extra>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
    const dir = await folder({ "tokenizer.json": big });
    await expect(loadPretrained(dir)).rejects.toThrow("the tokenizer has 301 token ids (0..300) but config.json vocab_size is 300");
  });
  test("a tokenizer smaller than the (padded) embedding is normal", async () => {
    const small = structuredClone(tokenizer);
    small.added_tokens = [];
    const { model, tokenizer: tok } = await loadPretrained(await folder({ "tokenizer.json": small }));
    expect(tok?.vocabSize).toBe(299);
    model.dispose();
  });
  test("a damaged tokenizer.json names the file", async () => {
    const bad = structuredClone(tokenizer);
    bad.model.type = "Banana";
    await expectRejected({ "tokenizer.json": bad }, "tokenizer.json", '"Banana"');
  });
});
