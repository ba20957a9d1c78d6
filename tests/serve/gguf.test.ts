// kiln serve of a llama.cpp GGUF file: the tiny model exported as F32 GGUF (exportGguf) and served
// from the file answers greedy completions and chat exactly as the same model served from its
// Hugging Face folder (the chat template comes from the file's tokenizer.chat_template).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { join } from "node:path";
import { loadServedModel, type LoadedModelEntry } from "../../src/serve/load.ts";
import { exportGguf } from "../../src/io/gguf_export.ts";
import { useBackend } from "../../src/tensor/tensor.ts";
import { getBackend } from "../backends.ts";
import { makeTinyModel } from "./tiny_model.ts";
import { startServer, type Served } from "./harness.ts";

let folder: LoadedModelEntry;
let file: LoadedModelEntry;
let served: Served;
let client: OpenAI;

beforeAll(async () => {
  useBackend(await getBackend("wasm"));
  const dir = await makeTinyModel();
  const gguf = join(dir, "tiny.gguf");
  await exportGguf(dir, gguf, { quantization: "f32" });
  folder = await loadServedModel(dir, { name: "folder" });
  file = await loadServedModel(gguf);
  served = startServer({ models: [folder, file] }, { disposeModels: true, dirs: [dir] });
  client = served.client;
});

afterAll(() => served.close());

describe("serve a GGUF file", () => {
  test("named after the file, with the folder's chat template", async () => {
    expect((await client.models.list()).data.map((m) => m.id)).toEqual(["folder", "tiny"]);
    expect(file.chatTemplate?.source).toBe(folder.chatTemplate?.source);
  });

  test("greedy completions and chat equal the folder's", async () => {
    for (const prompt of ["the gguf check", "another prompt"]) {
      const ask = (model: string) => client.completions.create({ model, prompt, max_tokens: 12, temperature: 0, logit_bias: { "299": -100 } });
      const [a, b] = await Promise.all([ask("folder"), ask("tiny")]);
      expect(b.choices[0].text).toBe(a.choices[0].text);
      expect(b.usage?.completion_tokens).toBe(12);
    }
    const chat = (model: string) => client.chat.completions.create({ model, messages: [{ role: "user", content: "hello there" }], max_tokens: 8, temperature: 0 });
    const [a, b] = await Promise.all([chat("folder"), chat("tiny")]);
    expect(b.choices[0].message.content).toBe(a.choices[0].message.content!);
  });
});
