// The model-family registry: every family's declarations agree with its model and with real
// checkpoints (HF tensor names = the model's parameters under toHFName = the fixture file's
// tensors), lookups by name and architecture, config.json round trips, and the import graph of
// src/models (no cycles, no import() to dodge one, no instanceof dispatch in the loader/saver).

import { describe, expect, test } from "bun:test";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { FAMILIES, SUPPORTED_ARCHITECTURES, createModel, familyByArchitecture, familyByName, parseModelConfig, type ModelConfig } from "../../src/models/index.ts";
import { readSafetensors } from "../../src/io/safetensors.ts";
import { withoutInit, useBackend } from "../../src/tensor/tensor.ts";
import { getBackend } from "../backends.ts";

const HF = join(import.meta.dir, "..", "fixtures", "hf");
const SRC = join(import.meta.dir, "..", "..", "src", "models");

const mistralHF = {
  architectures: ["MistralForCausalLM"], model_type: "mistral", vocab_size: 300, hidden_size: 64, intermediate_size: 96,
  num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, rms_norm_eps: 1e-5,
  sliding_window: 32, tie_word_embeddings: false,
};

async function configs(): Promise<ModelConfig[]> {
  const out = [];
  for (const f of ["gpt2", "llama", "qwen2"]) out.push(parseModelConfig(JSON.parse(await readFile(join(HF, f, "config.json"), "utf8"))));
  out.push(parseModelConfig(mistralHF));
  return out;
}

describe("model-family registry", () => {
  test("every family is found by name and by architecture; SUPPORTED_ARCHITECTURES lists them all", () => {
    expect(FAMILIES.map((f) => f.name).sort()).toEqual(["gpt2", "llama", "mistral", "qwen2"]);
    for (const f of FAMILIES) {
      expect(familyByName(f.name) as unknown).toBe(f);
      expect(familyByArchitecture(f.architecture) as unknown).toBe(f);
      expect(SUPPORTED_ARCHITECTURES[f.architecture]).toBe(f.name as never);
    }
    expect(familyByArchitecture("FalconForCausalLM")).toBeUndefined();
    expect(() => familyByName("falcon")).toThrow(/model_type "falcon" is not supported; supported: gpt2, llama, mistral, qwen2/);
  });

  test("per family: hfTensorNames = the model's parameters under toHFName (in order) = the checkpoint's tensors", async () => {
    useBackend(await getBackend("wasm"));
    for (const config of await configs()) {
      const family = familyByName(config.family);
      const model = withoutInit(() => createModel(config));
      expect(model.family as unknown, config.family).toBe(family);
      const declared = family.hfTensorNames(config);
      expect(model.namedParameters().map(([n]) => family.toHFName(n, config)), config.family).toEqual(declared);
      // every declared name maps back onto its parameter
      for (const n of declared) expect(family.fromHFName(n, config), n).toBe(model.namedParameters().find(([k]) => family.toHFName(k, config) === n)![0]);
      if (config.family !== "mistral") {
        const file = await readSafetensors(join(HF, config.family, "model.safetensors"));
        expect([...file.names()].sort(), config.family).toEqual([...declared].sort());
      }
      model.dispose();
    }
  });

  test("per family: parseConfig(toHFConfig(c)) gives c back (f32 dtype) and names its architecture", async () => {
    for (const config of await configs()) {
      const family = familyByName(config.family);
      const hf = family.toHFConfig(config);
      expect(hf.architectures).toEqual([family.architecture]);
      expect(hf.model_type).toBe(family.name);
      expect(parseModelConfig(hf)).toEqual({ ...config, torchDtype: "float32" });
    }
  });

  test("buffers and tied heads HF checkpoints carry map to nothing; other unknown names pass through (then: unexpected)", async () => {
    const [gpt2, llama, qwen2] = await configs();
    const g = familyByName("gpt2");
    expect(g.fromHFName("h.0.attn.c_attn.weight", gpt2)).toBe("transformer.h.0.attn.c_attn.weight");
    for (const n of ["lm_head.weight", "h.0.attn.bias", "transformer.h.1.attn.masked_bias"]) expect(g.fromHFName(n, gpt2), n).toBeNull();
    const l = familyByName("llama");
    expect(l.fromHFName("model.layers.0.self_attn.rotary_emb.inv_freq", llama)).toBeNull();
    expect(l.fromHFName("lm_head.weight", llama)).toBe("lm_head.weight"); // untied here
    expect(familyByName("qwen2").fromHFName("lm_head.weight", qwen2)).toBeNull(); // tied
    expect(l.fromHFName("score.weight", llama)).toBe("score.weight");
  });

  test("src/models: no import cycles, no import() to break one, no instanceof on model classes in the loader and saver", async () => {
    const files = (await readdir(SRC)).filter((f) => f.endsWith(".ts"));
    const deps = new Map<string, string[]>();
    for (const f of files) {
      const text = await readFile(join(SRC, f), "utf8");
      expect(/\bimport\(\s*["']\.\//.test(text), `${f} has an import() of a sibling`).toBe(false);
      deps.set(f, [...text.matchAll(/^(?:import|export)\s[^;]*?from\s+"\.\/([^"]+)"/gm)].map((m) => m[1]));
      const modelClass = /instanceof\s+(GPT|\w+ForCausalLM)\b/;
      if (["pretrained.ts", "save.ts", "registry.ts", "config.ts"].includes(f)) expect(modelClass.test(text), `${f} dispatches on a model class`).toBe(false);
    }
    const cycles: string[] = [];
    const visit = (f: string, path: string[]) => {
      for (const d of deps.get(f) ?? []) {
        if (path.includes(d)) cycles.push([...path.slice(path.indexOf(d)), d].join(" -> "));
        else visit(d, [...path, d]);
      }
    };
    for (const f of files) visit(f, [f]);
    expect(cycles).toEqual([]);
  });
});
