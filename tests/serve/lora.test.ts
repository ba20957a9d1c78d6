// LoRA adapters served as vLLM's --lora-modules: a PEFT adapter (made and saved by kiln) on the
// tiny model is listed in /v1/models, chosen per request by `model`, and answers exactly as the
// unmerged adapter model does through generate(); base and adapter requests run side by side,
// each in its own decode batch.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KilnServer } from "../../src/serve/server.ts";
import { loadServedAdapter, loadServedModel, type LoadedModelEntry } from "../../src/serve/load.ts";
import { loadPretrained } from "../../src/models/pretrained.ts";
import { generate } from "../../src/models/generate.ts";
import { applyLora, loraLayers } from "../../src/nn/lora_model.ts";
import { loadAdapter, saveAdapter } from "../../src/io/peft.ts";
import { useBackend } from "../../src/tensor/tensor.ts";
import { Rng } from "../../src/tensor/random.ts";
import { getBackend } from "../backends.ts";
import { makeTinyModel } from "./tiny_model.ts";
import { startServer, type Served } from "./harness.ts";

let dir: string;
let adapterDir: string;
let base: LoadedModelEntry;
let lora: LoadedModelEntry;
let served: Served;
let api: KilnServer;
let client: OpenAI;

beforeAll(async () => {
  useBackend(await getBackend("wasm"));
  dir = await makeTinyModel();
  adapterDir = await mkdtemp(join(tmpdir(), "kiln-adapter-"));
  // an adapter with non-zero B (PEFT initialises B = 0, which would change nothing)
  const { model } = await loadPretrained(dir);
  applyLora(model, { r: 4, loraAlpha: 16, targetModules: ["q_proj", "v_proj", "down_proj"] });
  const rng = new Rng(3);
  for (const [, layer] of loraLayers(model)) {
    const { B } = layer.adapterWeights("default");
    B.backend.upload(B.storage.buffer, Float32Array.from({ length: B.size }, () => rng.normal() * 0.5));
  }
  await saveAdapter(model, adapterDir);
  model.dispose();
  base = await loadServedModel(dir, { name: "tiny" });
  lora = await loadServedAdapter(dir, adapterDir, "tiny-lora");
  served = startServer({ models: [base, lora] }, { disposeModels: true, dirs: [dir, adapterDir] });
  ({ api, client } = served);
});

afterAll(() => served.close());

describe("serve LoRA adapters", () => {
  test("listed in /v1/models, chosen by `model`, equal to the unmerged adapter model's greedy text", async () => {
    expect((await client.models.list()).data.map((m) => m.id)).toEqual(["tiny", "tiny-lora"]);
    const prompts = ["adapter check one", "adapter check two", "three"];
    const ask = (model: string, prompt: string) => client.completions.create({ model, prompt, max_tokens: 16, temperature: 0 });
    const got = await Promise.all(prompts.flatMap((p) => [ask("tiny", p), ask("tiny-lora", p)])); // side by side
    const { model: unmerged, tokenizer } = await loadPretrained(dir);
    await loadAdapter(unmerged, adapterDir);
    for (const [i, p] of prompts.entries()) {
      const wantBase = await generate(base.model, base.tokenizer, p, { maxNewTokens: 16, temperature: 0, stopTokens: [299] });
      const wantLora = await generate(unmerged, tokenizer!, p, { maxNewTokens: 16, temperature: 0, stopTokens: [299] });
      expect(wantLora.text).not.toBe(wantBase.text); // the adapter changes the model
      expect(got[2 * i].choices[0].text).toBe(wantBase.text);
      expect(got[2 * i + 1].choices[0].text).toBe(wantLora.text);
    }
    unmerged.dispose();
    expect(api.models.map((m) => m.name)).toEqual(["tiny", "tiny-lora"]);
    expect(api.models[0].batcher).not.toBe(api.models[1].batcher); // one decode batch per adapter
  });
});
