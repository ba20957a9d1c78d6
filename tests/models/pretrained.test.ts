// Hugging Face folders against PyTorch: tests/fixtures/make_hf_models.py wrote tiny GPT-2 (F32), Llama
// (F16, untied head) and Qwen2 (BF16, q/k/v biases, tied head) models, each GQA 4 q / 2 kv heads
// where it applies, with float64 reference logits and 8 greedy tokens. kiln must match the logits
// within 1e-5 and the greedy tokens exactly, decode with a KV cache to the same logits, save folders
// that load back identically, load sharded checkpoints, and refuse broken folders with clear errors.

import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { cp, mkdtemp, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { readSafetensors, writeSafetensors, type SafetensorsDType, type SafetensorsTensor } from "../../src/io/safetensors.ts";
import { loadPretrained, loadWeights, parseModelConfig, toHFConfig, type ModelConfig, type PretrainedModel } from "../../src/models/index.ts";
import { fromArray, useBackend } from "../../src/tensor/tensor.ts";
import { scope } from "../../src/tensor/memory.ts";
import { noGrad } from "../../src/autograd/tape.ts";
import type { KVCache } from "../../src/models/kv_cache.ts";
import { backendNames, getBackend } from "../backends.ts";

const HF = join(import.meta.dir, "..", "fixtures", "hf");
const FAMILIES = ["gpt2", "llama", "qwen2"] as const;
const CLASSES = { gpt2: "GPT", llama: "LlamaForCausalLM", qwen2: "Qwen2ForCausalLM" };
const tmp = await mkdtemp(join(tmpdir(), "kiln-pretrained-"));
afterAll(() => rm(tmp, { recursive: true, force: true }));

async function reference(family: string) {
  const file = await readSafetensors(join(HF, family, "reference.safetensors"));
  const info = JSON.parse(await readFile(join(HF, family, "reference.json"), "utf8"));
  const ids = (await file.read("input_ids")) as Int32Array;
  const [B, T] = file.info("input_ids").shape;
  return { info, ids, B, T, logits: await file.readFloat64("logits"), greedy: (await file.read("greedy_tokens")) as Int32Array };
}

/** logits [B, T, V] as a flat array; ids row-major [B, T]. */
async function logitsOf(model: PretrainedModel, ids: ArrayLike<number>, B: number, cache?: KVCache): Promise<Float32Array> {
  const out = scope(() => noGrad(() => model.forward(fromArray(Int32Array.from(ids), [B, ids.length / B], { dtype: "i32" }), { cache })));
  const data = (await out.data()) as Float32Array;
  out.dispose();
  return data;
}

/** Row-wise concatenation of [B, Ta] and [B, Tb] id arrays. */
function concatRows(a: ArrayLike<number>, b: ArrayLike<number>, B: number): number[] {
  const ta = a.length / B, tb = b.length / B;
  return Array.from({ length: B }, (_, r) => [...Array.from(a).slice(r * ta, (r + 1) * ta), ...Array.from(b).slice(r * tb, (r + 1) * tb)]).flat();
}

function argmaxLast(logits: Float32Array, B: number, T: number, V: number): number[] {
  return Array.from({ length: B }, (_, b) => {
    const row = logits.subarray((b * T + T - 1) * V, (b * T + T) * V);
    let best = 0;
    for (let i = 1; i < V; i++) if (row[i] > row[best]) best = i;
    return best;
  });
}

describe.each(backendNames)("pretrained folders on %s", (backendName) => {
  describe.each([...FAMILIES])("%s", (family) => {
    const dir = join(HF, family);

    test("loads: class, HF parameter names, config, tokenizer, generation config", async () => {
      useBackend(await getBackend(backendName));
      const ref = await reference(family);
      const { model, config, tokenizer, generationConfig } = await loadPretrained(dir);
      expect(model.constructor.name).toBe(CLASSES[family]);
      expect(model.namedParameters().map(([n]) => n).sort()).toEqual([...ref.info.param_names].sort());
      expect(model.training).toBe(false);
      expect(config.family).toBe(family);
      expect(model.config.vocabSize).toBe(300);
      expect(tokenizer!.vocabSize).toBe(300);
      expect(tokenizer!.decode(tokenizer!.encode("The quick brown fox"))).toBe("The quick brown fox");
      expect(generationConfig!.eos_token_id).toBe(299);
      model.dispose();
    });

    test("logits match PyTorch within 1e-5; 8 greedy tokens equal", async () => {
      useBackend(await getBackend(backendName));
      const ref = await reference(family);
      const { model } = await loadPretrained(dir);
      const V = model.config.vocabSize;
      expect(await logitsOf(model, ref.ids, ref.B)).toBeAllClose(ref.logits, { atol: 1e-5, rtol: 0 });
      let seq = Array.from(ref.ids);
      const picked: number[][] = [];
      for (let i = 0; i < ref.greedy.length / ref.B; i++) {
        const T = seq.length / ref.B;
        const next = argmaxLast(await logitsOf(model, seq, ref.B), ref.B, T, V);
        picked.push(next);
        seq = concatRows(seq, next, ref.B);
      }
      const got = Array.from({ length: ref.B }, (_, b) => picked.map((p) => p[b])).flat(); // [B, NEW]
      expect(got).toEqual(Array.from(ref.greedy));
      model.dispose();
    });

    test("KV-cache decode equals full recompute (1e-5)", async () => {
      useBackend(await getBackend(backendName));
      const ref = await reference(family);
      const { model } = await loadPretrained(dir);
      const V = model.config.vocabSize;
      const { B, T } = ref;
      const NEW = ref.greedy.length / B;
      const all = concatRows(ref.ids, ref.greedy, B); // [B, T + NEW]
      const full = await logitsOf(model, all, B); // [B, T + NEW, V]
      const cache = model.newCache(B, T + NEW);
      const rowsAt = (t0: number, t1: number) => Array.from({ length: B }, (_, b) => all.slice(b * (T + NEW) + t0, b * (T + NEW) + t1)).flat();
      const fullAt = (t0: number, t1: number) => {
        const out = new Float32Array(B * (t1 - t0) * V);
        for (let b = 0; b < B; b++) out.set(full.subarray((b * (T + NEW) + t0) * V, (b * (T + NEW) + t1) * V), b * (t1 - t0) * V);
        return out;
      };
      expect(await logitsOf(model, rowsAt(0, T), B, cache)).toBeAllClose(fullAt(0, T), { atol: 1e-5, rtol: 0 });
      for (let t = T; t < T + NEW; t++) {
        expect(await logitsOf(model, rowsAt(t, t + 1), B, cache), `position ${t}`).toBeAllClose(fullAt(t, t + 1), { atol: 1e-5, rtol: 0 });
      }
      expect(cache.length).toBe(T + NEW);
      // B = 1 takes the zero-copy prefix path
      const one = model.newCache(1, T + NEW);
      expect(await logitsOf(model, all.slice(0, T + 2), 1, one)).toBeAllClose(full.subarray(0, (T + 2) * V), { atol: 1e-5, rtol: 0 });
      expect(await logitsOf(model, all.slice(T + 2, T + 3), 1, one)).toBeAllClose(full.subarray((T + 2) * V, (T + 3) * V), { atol: 1e-5, rtol: 0 });
      cache.dispose();
      one.dispose();
      model.dispose();
    });

    test("savePretrained -> loadPretrained gives the same model; tied weights saved once", async () => {
      useBackend(await getBackend(backendName));
      const ref = await reference(family);
      const { model, config } = await loadPretrained(dir);
      const out = join(tmp, `${backendName}-${family}-saved`);
      await model.savePretrained(out);
      const again = await loadPretrained(out);
      expect(again.config).toEqual({ ...config, torchDtype: "float32" });
      expect(await logitsOf(again.model, ref.ids, ref.B)).toEqual(await logitsOf(model, ref.ids, ref.B));
      const saved = await readSafetensors(join(out, "model.safetensors"));
      expect(saved.metadata.format).toBe("pt");
      expect(saved.names().sort()).toEqual([...ref.info.param_names].sort()); // lm_head only where untied
      expect(saved.tensors.every((t) => t.dtype === "F32")).toBe(true);
      const hf = JSON.parse(await readFile(join(out, "config.json"), "utf8"));
      expect(hf.architectures).toEqual(JSON.parse(await readFile(join(dir, "config.json"), "utf8")).architectures);
      expect(hf.torch_dtype).toBe("float32");
      expect(await readFile(join(out, "tokenizer.json"), "utf8")).toBe(await readFile(join(dir, "tokenizer.json"), "utf8"));
      expect(again.tokenizer).toBeDefined();
      expect(again.generationConfig).toEqual((await loadPretrained(dir, { tokenizer: false })).generationConfig);
      model.dispose();
      again.model.dispose();
    });
  });

  test("sharded checkpoint (model.safetensors.index.json, 2 shards) loads the same weights", async () => {
    useBackend(await getBackend(backendName));
    const ref = await reference("llama");
    const dir = await shardedCopy("llama", `${backendName}-sharded`);
    const { model } = await loadPretrained(dir);
    expect(await logitsOf(model, ref.ids, ref.B)).toBeAllClose(ref.logits, { atol: 1e-5, rtol: 0 });
    model.dispose();
  });

  test("Mistral config builds MistralForCausalLM on the Llama graph; sliding window is enforced", async () => {
    useBackend(await getBackend(backendName));
    const ref = await reference("llama");
    const dir = await copyFixture("llama", `${backendName}-mistral`);
    const cfg = JSON.parse(await readFile(join(dir, "config.json"), "utf8"));
    await writeFile(join(dir, "config.json"), JSON.stringify({ ...cfg, architectures: ["MistralForCausalLM"], model_type: "mistral", sliding_window: 9 }));
    const { model } = await loadPretrained(dir);
    expect(model.constructor.name).toBe("MistralForCausalLM");
    expect(await logitsOf(model, ref.ids, ref.B)).toBeAllClose(ref.logits, { atol: 1e-5, rtol: 0 });
    expect(() => noGrad(() => scope(() => model.forward(fromArray(new Int32Array(10), [1, 10], { dtype: "i32" }))))).toThrow(/sliding window 9/);
    model.dispose();
  });
});

describe("toHFConfig", () => {
  test("parses back to the same config for every family (torch_dtype float32)", async () => {
    for (const family of FAMILIES) {
      const config = parseModelConfig(JSON.parse(await readFile(join(HF, family, "config.json"), "utf8")));
      expect(parseModelConfig(toHFConfig(config))).toEqual({ ...config, torchDtype: "float32" });
    }
    const mistral = parseModelConfig({
      architectures: ["MistralForCausalLM"], model_type: "mistral", vocab_size: 300, hidden_size: 64, intermediate_size: 96,
      num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 32, max_position_embeddings: 128,
      rms_norm_eps: 1e-5, rope_theta: 1e6, sliding_window: 4096, eos_token_id: [1, 2],
    });
    expect(parseModelConfig(toHFConfig(mistral))).toEqual({ ...mistral, torchDtype: "float32" });
    const llama = parseModelConfig(JSON.parse(await readFile(join(HF, "llama", "config.json"), "utf8")));
    expect(() => toHFConfig({ ...llama, family: "llama", qkvBias: true, oBias: false } as ModelConfig)).toThrow(/attention_bias sets both/);
  });
});

describe("pretrained folder errors", () => {
  test("missing shard names the shard and its weights", async () => {
    useBackend(await getBackend("wasm"));
    const dir = await shardedCopy("qwen2", "missing-shard");
    await unlink(join(dir, "model-00002-of-00002.safetensors"));
    await expect(loadPretrained(dir)).rejects.toThrow(/shard model-00002-of-00002\.safetensors listed in model\.safetensors\.index\.json is missing from .*\(it holds \d+ weights: model\./);
  });

  test("index entry absent from its shard, missing weight, unexpected weight, wrong shape, wrong dtype", async () => {
    useBackend(await getBackend("wasm"));
    const dir = await shardedCopy("qwen2", "bad-index");
    const indexPath = join(dir, "model.safetensors.index.json");
    const index = JSON.parse(await readFile(indexPath, "utf8"));
    index.weight_map["model.norm.weight"] = "model-00001-of-00002.safetensors";
    await writeFile(indexPath, JSON.stringify(index));
    await expect(loadPretrained(dir)).rejects.toThrow(/lists 1 weights in model-00001-of-00002\.safetensors that it does not hold: model\.norm\.weight/);

    const edit = async (name: string, change: (t: Record<string, SafetensorsTensor>) => void) => {
      const d = await copyFixture("qwen2", name);
      const tensors = await tensorsOf(join(d, "model.safetensors"));
      change(tensors);
      await writeSafetensors(join(d, "model.safetensors"), tensors);
      return d;
    };
    const missing = await edit("missing-weight", (t) => delete t["model.layers.1.mlp.up_proj.weight"]);
    await expect(loadPretrained(missing)).rejects.toThrow(/do not fit Qwen2ForCausalLM; missing 1 of \d+: model\.layers\.1\.mlp\.up_proj\.weight/);
    const both = await edit("missing-and-unexpected", (t) => {
      t["model.layers.2.mlp.up_proj.weight"] = t["model.layers.1.mlp.up_proj.weight"];
      delete t["model.layers.1.mlp.up_proj.weight"];
    });
    await expect(loadPretrained(both)).rejects.toThrow(/missing 1 of \d+: model\.layers\.1\.mlp\.up_proj\.weight; unexpected 1: model\.layers\.2\.mlp\.up_proj\.weight/);
    const shape = await edit("wrong-shape", (t) => (t["model.norm.weight"] = { dtype: "F32", shape: [32], data: new Float32Array(32) }));
    await expect(loadPretrained(shape)).rejects.toThrow(/model\.norm\.weight in model\.safetensors is F32 \[32\], the model expects \[64\]/);
    const dtype = await edit("wrong-dtype", (t) => (t["model.norm.weight"] = { dtype: "I32", shape: [64], data: new Int32Array(64) }));
    await expect(loadPretrained(dtype)).rejects.toThrow(/model\.norm\.weight in model\.safetensors has dtype I32/);
  });

  test("tensors the model does not use (an unknown name, a zero-element tensor, an int buffer) load with a warning naming them", async () => {
    useBackend(await getBackend("wasm"));
    const ref = await reference("qwen2");
    const dir = await copyFixture("qwen2", "unexpected-tensors");
    const tensors = await tensorsOf(join(dir, "model.safetensors"));
    tensors["model.layers.2.mlp.up_proj.weight"] = tensors["model.layers.1.mlp.up_proj.weight"];
    tensors["score.weight"] = { dtype: "F32", shape: [0, 64], data: new Float32Array(0) };
    tensors["model.position_ids"] = { dtype: "I64", shape: [1, 4], data: new BigInt64Array(4) };
    await writeSafetensors(join(dir, "model.safetensors"), tensors);
    const warnings: string[] = [];
    const { model, unexpectedKeys } = await loadPretrained(dir, { onWarning: (m) => warnings.push(m) });
    expect(unexpectedKeys.sort()).toEqual(["model.layers.2.mlp.up_proj.weight", "model.position_ids", "score.weight"]);
    expect(warnings.length).toBe(1);
    expect(warnings[0]).toMatch(/3 checkpoint tensors are not used by Qwen2ForCausalLM and were skipped \(unexpected keys\): /);
    for (const k of unexpectedKeys) expect(warnings[0]).toContain(k);
    expect(await logitsOf(model, ref.ids, ref.B)).toBeAllClose(ref.logits, { atol: 1e-5, rtol: 0 });
    model.dispose();
    // the same through loadWeights into an existing model; a clean folder warns about nothing
    const { model: again } = await loadPretrained(join(HF, "qwen2"), { onWarning: (m) => warnings.push(m) });
    expect(warnings.length).toBe(1);
    expect((await loadWeights(again, dir, { onWarning: (m) => warnings.push(m) })).unexpectedKeys.length).toBe(3);
    expect(warnings.length).toBe(2);
    again.dispose();
  });

  test("unsupported architecture and a folder without weights", async () => {
    useBackend(await getBackend("wasm"));
    const dir = await copyFixture("llama", "falcon");
    const cfg = JSON.parse(await readFile(join(dir, "config.json"), "utf8"));
    await writeFile(join(dir, "config.json"), JSON.stringify({ ...cfg, architectures: ["FalconForCausalLM"], model_type: "falcon" }));
    await expect(loadPretrained(dir)).rejects.toThrow(/architecture "FalconForCausalLM" .* is not supported; supported: GPT2LMHeadModel/);
    const empty = await copyFixture("llama", "no-weights");
    await unlink(join(empty, "model.safetensors"));
    await expect(loadPretrained(empty)).rejects.toThrow(/has neither model\.safetensors nor model\.safetensors\.index\.json/);
  });

  test("a checkpoint mixing F64, F32 and BF16 tensors loads the same values", async () => {
    useBackend(await getBackend("wasm"));
    const ref = await reference("qwen2");
    const dir = await copyFixture("qwen2", "mixed-dtypes");
    const file = await readSafetensors(join(dir, "model.safetensors"));
    const mixed: Record<string, SafetensorsTensor> = {};
    for (const [i, t] of file.tensors.entries()) {
      const values = (await file.read(t.name)) as Float32Array; // BF16 values: exact in F64, F32 and BF16
      const dtype = (["F64", "F32", "BF16"] as const)[i % 3];
      mixed[t.name] = { dtype, shape: t.shape, data: dtype === "F64" ? Float64Array.from(values) : values };
    }
    await writeSafetensors(join(dir, "model.safetensors"), mixed);
    const { model } = await loadPretrained(dir);
    expect(await logitsOf(model, ref.ids, ref.B)).toBeAllClose(ref.logits, { atol: 1e-5, rtol: 0 });
    model.dispose();
  });

  test("GPT2Model-style names (no transformer. prefix, attn.bias buffers, tied lm_head) load", async () => {
    useBackend(await getBackend("wasm"));
    const ref = await reference("gpt2");
    const dir = await copyFixture("gpt2", "gpt2-legacy-names");
    const tensors = await tensorsOf(join(dir, "model.safetensors"));
    const renamed: Record<string, SafetensorsTensor> = {};
    for (const [n, t] of Object.entries(tensors)) renamed[n.replace(/^transformer\./, "")] = t;
    renamed["h.0.attn.bias"] = { dtype: "F32", shape: [1, 1, 32, 32], data: new Float32Array(32 * 32) };
    renamed["lm_head.weight"] = tensors["transformer.wte.weight"];
    await writeSafetensors(join(dir, "model.safetensors"), renamed);
    const { model } = await loadPretrained(dir);
    expect(await logitsOf(model, ref.ids, ref.B)).toBeAllClose(ref.logits, { atol: 1e-5, rtol: 0 });
    model.dispose();
  });
});

// ---------------------------------------------------------------------------------------------

async function copyFixture(family: string, name: string): Promise<string> {
  const dir = join(tmp, name);
  await cp(join(HF, family), dir, { recursive: true });
  return dir;
}

/** Every tensor of a file with its stored dtype and raw bytes. */
async function tensorsOf(path: string): Promise<Record<string, SafetensorsTensor>> {
  const file = await readSafetensors(path);
  const out: Record<string, SafetensorsTensor> = {};
  for (const t of file.tensors) out[t.name] = { dtype: t.dtype as SafetensorsDType, shape: t.shape, data: await file.readBytes(t.name) };
  return out;
}

/** A copy of a fixture folder with its weights split over two shards and an index, as transformers shards. */
async function shardedCopy(family: string, name: string): Promise<string> {
  const dir = await copyFixture(family, name);
  const tensors = await tensorsOf(join(dir, "model.safetensors"));
  await unlink(join(dir, "model.safetensors"));
  const names = Object.keys(tensors).sort();
  const half = Math.ceil(names.length / 2);
  const shards = [names.slice(0, half), names.slice(half)];
  const weightMap: Record<string, string> = {};
  let total = 0;
  for (const [i, shard] of shards.entries()) {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    await writeSafetensors(join(dir, file), Object.fromEntries(shard.map((n) => [n, tensors[n]])), { format: "pt" });
    for (const n of shard) {
      weightMap[n] = file;
      total += (tensors[n].data as Uint8Array).byteLength;
    }
  }
  await writeFile(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  return dir;
}
