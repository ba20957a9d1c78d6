// exportGguf / loadGguf / exportGgufAdapter without llama.cpp: the metadata llama.cpp reads, the
// tokenizer entries, tensor names and types per family, export -> load giving back the same model
// (every family's layout undone exactly), a loaded GGUF fine-tuned and saved as an HF folder, the
// adapter file's layout, and the errors for what cannot be exported. (That llama.cpp computes the
// same thing from these files is tests/interop/gguf_llama_cpp.test.ts.)

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile, cp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readGguf } from "../../src/io/gguf.ts";
import { exportGguf } from "../../src/io/gguf_export.ts";
import { loadGguf } from "../../src/io/gguf_load.ts";
import { exportGgufAdapter } from "../../src/io/gguf_adapter.ts";
import { loadPretrained, type PretrainedModel } from "../../src/models/index.ts";
import { applyLora, loraLayers } from "../../src/nn/lora_model.ts";
import { saveAdapter } from "../../src/io/peft.ts";
import { loadTokenizer } from "../../src/data/tokenizer.ts";
import { fromArray, useBackend } from "../../src/tensor/tensor.ts";
import { scope } from "../../src/tensor/memory.ts";
import { noGrad } from "../../src/autograd/tape.ts";
import { getBackend } from "../backends.ts";
import { HF_FIXTURES, kQuantLlamaConfig, LLAMA2_TOKENIZER, llama2VocabConfig, makeModelFolder } from "./gguf_models.ts";

const tmp = await mkdtemp(join(tmpdir(), "kiln-gguf-export-"));
afterAll(() => rm(tmp, { recursive: true, force: true }));
beforeAll(async () => useBackend(await getBackend("wasm")));

const IDS = [5, 17, 42, 100, 3, 250, 7, 9];

function param(model: { namedParameters(): [string, any][] }, name: string) {
  const t = model.namedParameters().find(([n]) => n === name)?.[1];
  if (!t) throw new Error(`no parameter ${name}`);
  return t;
}

async function logits(model: PretrainedModel, ids = IDS): Promise<Float32Array> {
  const out = scope(() => noGrad(() => model.forward(fromArray(Int32Array.from(ids), [1, ids.length], { dtype: "i32" }))));
  const data = (await out.data()) as Float32Array;
  out.dispose();
  return data;
}

describe("exportGguf metadata and tensors", () => {
  test("llama: hyperparameters, tokenizer entries, names, permuted q/k, F32 norms", async () => {
    const out = join(tmp, "llama.gguf");
    const { types } = await exportGguf(join(HF_FIXTURES, "llama"), out, { quantization: "q8_0" });
    expect(types).toEqual({ Q8_0: 16, F32: 5 });
    const f = await readGguf(out);
    expect(f.get("general.architecture")).toBe("llama");
    expect(f.get("general.file_type")).toBe(7);
    expect(f.get("general.quantization_version")).toBe(2);
    expect(f.get("general.name")).toBe("llama");
    const hp = Object.fromEntries([...f.metadata].filter(([k]) => k.startsWith("llama.")).map(([k, v]) => [k, v.value]));
    expect(hp).toEqual({
      "llama.context_length": 64, "llama.embedding_length": 64, "llama.block_count": 2, "llama.feed_forward_length": 128,
      "llama.attention.head_count": 4, "llama.attention.head_count_kv": 2, "llama.attention.key_length": 16, "llama.attention.value_length": 16,
      "llama.attention.layer_norm_rms_epsilon": Math.fround(1e-5), "llama.rope.freq_base": 500000, "llama.rope.dimension_count": 16, "llama.vocab_size": 300,
    });
    expect(f.metadata.get("llama.context_length")?.type).toBe("u32");
    expect(f.metadata.get("llama.rope.freq_base")?.type).toBe("f32");
    // tokenizer: byte-level BPE, GPT-2 split, 300 tokens (299 + <|endoftext|> as a control token), merges
    expect(f.get("tokenizer.ggml.model")).toBe("gpt2");
    expect(f.get("tokenizer.ggml.pre")).toBe("gpt-2");
    const tokens = f.get("tokenizer.ggml.tokens") as string[];
    expect(tokens.length).toBe(300);
    expect(tokens[299]).toBe("<|endoftext|>");
    expect((f.get("tokenizer.ggml.token_type") as number[])[299]).toBe(3);
    expect((f.get("tokenizer.ggml.token_type") as number[]).filter((t) => t === 1).length).toBe(299);
    expect((f.get("tokenizer.ggml.merges") as string[])[0]).toBe("Ġ Ġ");
    expect(f.get("tokenizer.ggml.bos_token_id")).toBe(299);
    expect(f.get("tokenizer.ggml.eos_token_id")).toBe(299);
    expect(f.get("tokenizer.ggml.add_bos_token")).toBe(false);
    expect(f.tensors.map((t) => t.name).slice(0, 11)).toEqual([
      "token_embd.weight", "blk.0.attn_norm.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight",
      "blk.0.attn_output.weight", "blk.0.ffn_norm.weight", "blk.0.ffn_gate.weight", "blk.0.ffn_up.weight", "blk.0.ffn_down.weight", "blk.1.attn_norm.weight",
    ]);
    expect(f.info("blk.0.attn_k.weight").shape).toEqual([32, 64]);
    expect(f.info("blk.0.attn_norm.weight").type).toBe("F32");
    expect(f.info("output.weight").type).toBe("Q8_0");
  });

  test("llama q/k rows are permuted for llama.cpp's RoPE (LlamaModel.permute), v is not; qwen2 is not permuted", async () => {
    const { model } = await loadPretrained(join(HF_FIXTURES, "llama"), { tokenizer: false });
    const q = (await param(model, "model.layers.0.self_attn.q_proj.weight").data()) as Float32Array; // [64, 64], 4 heads of 16 rows
    const v = (await param(model, "model.layers.0.self_attn.v_proj.weight").data()) as Float32Array;
    model.dispose();
    const out = join(tmp, "llama-f32.gguf");
    await exportGguf(join(HF_FIXTURES, "llama"), out, { quantization: "f32" });
    const f = await readGguf(out);
    const gq = await f.read("blk.0.attn_q.weight");
    const row = (a: Float32Array, r: number) => Array.from(a.subarray(r * 64, (r + 1) * 64));
    // head 1, pair j = 3: HF rows 16 + 3 and 16 + 8 + 3 become rows 16 + 6 and 16 + 7
    expect(row(gq, 16 + 6)).toEqual(row(q, 16 + 3));
    expect(row(gq, 16 + 7)).toEqual(row(q, 16 + 8 + 3));
    expect(Array.from(await f.read("blk.0.attn_v.weight"))).toEqual(Array.from(v));
    const qwen = join(tmp, "qwen2-f32.gguf");
    await exportGguf(join(HF_FIXTURES, "qwen2"), qwen, { quantization: "f32" });
    const { model: qm } = await loadPretrained(join(HF_FIXTURES, "qwen2"), { tokenizer: false });
    const qq = (await param(qm, "model.layers.0.self_attn.q_proj.bias").data()) as Float32Array;
    qm.dispose();
    const g = await readGguf(qwen);
    expect(Array.from(await g.read("blk.0.attn_q.bias"))).toEqual(Array.from(qq));
    expect(g.has("output.weight")).toBe(false); // tied: llama.cpp reuses token_embd
  });

  test("gpt2: Conv1D weights transposed to [out, in], learned positions, no output.weight (tied)", async () => {
    const out = join(tmp, "gpt2.gguf");
    await exportGguf(join(HF_FIXTURES, "gpt2"), out, { quantization: "f16" });
    const f = await readGguf(out);
    expect(f.get("general.architecture")).toBe("gpt2");
    expect(f.get("gpt2.feed_forward_length")).toBe(256);
    expect(f.get("gpt2.attention.layer_norm_epsilon")).toBeCloseTo(1e-5, 10);
    expect(f.info("blk.0.attn_qkv.weight").shape).toEqual([192, 64]);
    expect(f.info("blk.0.ffn_down.weight").shape).toEqual([64, 256]);
    expect(f.info("position_embd.weight").shape).toEqual([32, 64]);
    expect(f.info("blk.0.attn_qkv.bias").type).toBe("F32");
    expect(f.has("output.weight")).toBe(false);
  });
});

test("a SentencePiece-style tokenizer (Llama 2) is written as llama.cpp's llama tokenizer: scores, byte and control types", async () => {
  const dir = join(tmp, "l2");
  (await makeModelFolder(llama2VocabConfig(), dir, await getBackend("wasm"), 2, LLAMA2_TOKENIZER)).dispose();
  const out = join(tmp, "l2.gguf");
  await exportGguf(dir, out, { quantization: "f16" });
  const f = await readGguf(out);
  expect(f.get("tokenizer.ggml.model")).toBe("llama");
  expect(f.get("tokenizer.ggml.pre")).toBe("default");
  const tokens = f.get("tokenizer.ggml.tokens") as string[];
  const types = f.get("tokenizer.ggml.token_type") as number[];
  const scores = f.get("tokenizer.ggml.scores") as number[];
  expect(tokens.length).toBe(32000);
  expect([tokens[0], types[0]]).toEqual(["<unk>", 2]);
  expect([tokens[1], types[1]]).toEqual(["<s>", 3]);
  expect([tokens[3], types[3]]).toEqual(["<0x00>", 6]);
  expect(tokens[261]).toBe("\u2581t"); // the first merge: the highest score among merged pieces
  expect(scores[261]).toBe(-0);
  expect(scores[262]).toBe(-1); // "in", the second merge
  expect(f.has("tokenizer.ggml.merges")).toBe(false);
  expect(f.get("tokenizer.ggml.add_bos_token")).toBe(true);
  expect(f.get("tokenizer.ggml.bos_token_id")).toBe(1);
  // loadGguf rebuilds it (merges from the scores, as transformers' LlamaConverter): the same ids as the original
  const g = await loadGguf(out);
  expect(g.config.vocabSize).toBe(32000);
  const ref = await loadTokenizer(LLAMA2_TOKENIZER);
  for (const text of ["Hello world", "The quick brown fox jumps over the lazy dog.", "naïve café 12345 — 日本語 🙂", "  leading spaces\nand\ttabs"]) {
    expect(g.tokenizer!.encode(text)).toEqual(ref.encode(text));
    expect(g.tokenizer!.decode(ref.encode(text), { skipSpecialTokens: true })).toBe(text);
  }
  g.model.dispose();
});

describe("loadGguf", () => {
  for (const family of ["gpt2", "llama", "qwen2"] as const) {
    test(`${family}: export F32 -> loadGguf gives the folder's model back (same config, same logits)`, async () => {
      const out = join(tmp, `${family}-back.gguf`);
      await exportGguf(join(HF_FIXTURES, family), out, { quantization: "f32" });
      const { model, config } = await loadPretrained(join(HF_FIXTURES, family), { tokenizer: false });
      const g = await loadGguf(out, { onWarning: () => {} });
      expect(g.config.family).toBe(family);
      for (const key of ["vocabSize", "nEmbd", "nLayer", "nHead", "blockSize"] as const) expect((g.config as any)[key]).toBe((config as any)[key]);
      expect(Array.from(await logits(g.model))).toEqual(Array.from(await logits(model)));
      // the tokenizer comes back from tokenizer.ggml.*: same ids as the folder's tokenizer.json
      const text = "hello world, the abc <|endoftext|> ab ab";
      const ref = await loadTokenizer(join(HF_FIXTURES, family));
      expect(g.tokenizer!.encode(text)).toEqual(ref.encode(text));
      model.dispose();
      g.model.dispose();
    });
  }

  test("a quantized file loads dequantized: close to the original by the type's error, exactly the file's values", async () => {
    const out = join(tmp, "q8.gguf");
    await exportGguf(join(HF_FIXTURES, "llama"), out, { quantization: "q8_0" });
    const g = await loadGguf(out);
    const f = await readGguf(out);
    const w = (await param(g.model, "model.layers.1.mlp.down_proj.weight").data()) as Float32Array;
    expect(Array.from(w)).toEqual(Array.from(await f.read("blk.1.ffn_down.weight")));
    const { model } = await loadPretrained(join(HF_FIXTURES, "llama"), { tokenizer: false });
    const [a, b] = [await logits(g.model), await logits(model)];
    const diff = a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
    expect(diff).toBeGreaterThan(1e-4); // it is the quantized model ...
    expect(diff).toBeLessThan(0.2); // ... of this one (logits span about 5)
    model.dispose();
    g.model.dispose();
  });

  test("a model loaded from GGUF fine-tunes and saves as a Hugging Face folder that loads back", async () => {
    const out = join(tmp, "ft.gguf");
    await exportGguf(join(HF_FIXTURES, "qwen2"), out, { quantization: "q8_0" });
    const g = await loadGguf(out);
    const ids = fromArray(Int32Array.from(IDS.slice(0, 7)), [1, 7], { dtype: "i32" });
    const targets = fromArray(Int32Array.from(IDS.slice(1)), [1, 7], { dtype: "i32" });
    g.model.train();
    const loss = (g.model as any).loss(ids, targets);
    loss.backward();
    const grad = param(g.model, "model.layers.0.self_attn.q_proj.weight").grad!;
    expect(((await grad.data()) as Float32Array).some((x) => x !== 0)).toBe(true);
    const dir = join(tmp, "from-gguf");
    await (g.model as any).savePretrained(dir);
    await writeFile(join(dir, "tokenizer.json"), JSON.stringify(g.tokenizerFiles!.json));
    await writeFile(join(dir, "tokenizer_config.json"), JSON.stringify(g.tokenizerFiles!.config));
    const back = await loadPretrained(dir);
    expect(Array.from(await logits(back.model))).toEqual(Array.from(await logits(g.model.eval() as PretrainedModel)));
    expect(back.tokenizer!.encode("abc ab")).toEqual(g.tokenizer!.encode("abc ab"));
    back.model.dispose();
    g.model.dispose();
  });

  test("k-quant model (rows of 256): Q4_K and Q6_K round trip through loadGguf", async () => {
    const dir = join(tmp, "k-llama");
    (await makeModelFolder(kQuantLlamaConfig(), dir, await getBackend("wasm"))).dispose();
    for (const q of ["q4_k", "q6_k"] as const) {
      const out = join(tmp, `k-${q}.gguf`);
      const { types, fallbacks } = await exportGguf(dir, out, { quantization: q });
      expect(fallbacks).toEqual([]);
      expect(types[q.toUpperCase()]).toBe(16);
      const g = await loadGguf(out);
      expect(g.config).toMatchObject({ nEmbd: 256, intermediateSize: 512, headDim: 64, nKvHead: 2 });
      g.model.dispose();
    }
  });

  test("files kiln cannot build a model from are refused by name", async () => {
    const bad = join(tmp, "arch.gguf");
    const { writeGguf, gguf } = await import("../../src/io/gguf.ts");
    await writeGguf(bad, new Map([["general.architecture", gguf.str("mamba")]]), []);
    await expect(loadGguf(bad)).rejects.toThrow(/general.architecture "mamba" is not supported \(gpt2, llama, qwen2\)/);
    await writeGguf(bad, new Map([["general.architecture", gguf.str("llama")], ["llama.context_length", gguf.u32(8)]]), []);
    await expect(loadGguf(bad)).rejects.toThrow(/metadata llama.embedding_length is missing/);
    // a tensor of the wrong shape
    await exportGguf(join(HF_FIXTURES, "llama"), join(tmp, "llama-f32b.gguf"), { quantization: "f32" });
    const f = await readGguf(join(tmp, "llama-f32b.gguf"));
    const tensors = await Promise.all(f.tensors.map(async (t) => ({ name: t.name, shape: t.name === "blk.1.ffn_up.weight" ? [64, 128] : t.shape, type: t.type, data: await f.readBytes(t.name) })));
    await writeGguf(bad, f.metadata, tensors);
    await expect(loadGguf(bad)).rejects.toThrow(/tensor blk.1.ffn_up.weight has shape \[64,128\], the model needs \[128,64\]/);
    await writeGguf(bad, f.metadata, tensors.filter((t) => t.name !== "blk.1.ffn_up.weight"));
    await expect(loadGguf(bad)).rejects.toThrow(/tensor blk.1.ffn_up.weight \(kiln model.layers.1.mlp.up_proj.weight\) is missing/);
  });
});

describe("exportGgufAdapter", () => {
  test("PEFT adapter -> lora_a [r, in] / lora_b [out, r] per layer, alpha, q/k lora_b permuted like the base rows", async () => {
    const { model } = await loadPretrained(join(HF_FIXTURES, "llama"), { tokenizer: false });
    applyLora(model, { r: 4, loraAlpha: 8, targetModules: ["q_proj", "v_proj"] });
    for (const [, l] of loraLayers(model)) {
      const { B } = l.adapterWeights("default");
      B.backend.upload(B.storage.buffer, Float32Array.from({ length: B.size }, (_, i) => i / 100));
    }
    const adapter = join(tmp, "adapter");
    await saveAdapter(model, adapter, { baseModelNameOrPath: join(HF_FIXTURES, "llama") });
    model.dispose();
    const out = join(tmp, "adapter.gguf");
    expect(await exportGgufAdapter(adapter, out, { quantization: "f32" })).toEqual({ layers: 4 });
    const f = await readGguf(out);
    expect(f.get("general.type")).toBe("adapter");
    expect(f.get("adapter.type")).toBe("lora");
    expect(f.get("adapter.lora.alpha")).toBe(8);
    expect(f.tensors.map((t) => t.name).sort()).toEqual([
      "blk.0.attn_q.weight.lora_a", "blk.0.attn_q.weight.lora_b", "blk.0.attn_v.weight.lora_a", "blk.0.attn_v.weight.lora_b",
      "blk.1.attn_q.weight.lora_a", "blk.1.attn_q.weight.lora_b", "blk.1.attn_v.weight.lora_a", "blk.1.attn_v.weight.lora_b",
    ]);
    expect(f.info("blk.0.attn_q.weight.lora_a").shape).toEqual([4, 64]);
    expect(f.info("blk.0.attn_q.weight.lora_b").shape).toEqual([64, 4]);
    const qb = await f.read("blk.0.attn_q.weight.lora_b");
    const vb = await f.read("blk.0.attn_v.weight.lora_b");
    expect(vb[4 * 3]).toBeCloseTo(0.12, 6); // v: row 3 as saved
    expect(qb[4 * 6]).toBeCloseTo(0.12, 6); // q: HF row 3 (head 0, pair 3) is llama.cpp's row 6
    // rank-stabilised: llama.cpp's scale alpha/r must equal alpha/sqrt(r)
    await cp(adapter, join(tmp, "adapter-rs"), { recursive: true });
    const cfgPath = join(tmp, "adapter-rs", "adapter_config.json");
    const cfg = JSON.parse(await Bun.file(cfgPath).text());
    await writeFile(cfgPath, JSON.stringify({ ...cfg, use_rslora: true }));
    await exportGgufAdapter(join(tmp, "adapter-rs"), out, { quantization: "q8_0" });
    const rs = await readGguf(out);
    expect(rs.get("adapter.lora.alpha")).toBeCloseTo(16, 5);
    expect(rs.info("blk.0.attn_q.weight.lora_a").type).toBe("Q8_0");
    expect(rs.info("blk.0.attn_q.weight.lora_b").type).toBe("F16"); // rows of r = 4: the converter's F16 fallback
  });

  test("an adapter without a base model folder, or with modules_to_save, is refused", async () => {
    const adapter = join(tmp, "adapter");
    const cfgPath = join(adapter, "adapter_config.json");
    const cfg = JSON.parse(await Bun.file(cfgPath).text());
    await writeFile(cfgPath, JSON.stringify({ ...cfg, base_model_name_or_path: "Qwen/Qwen2-0.5B" }));
    await expect(exportGgufAdapter(adapter, join(tmp, "x.gguf"))).rejects.toThrow(/base model "Qwen\/Qwen2-0.5B" is not a local model folder/);
    await writeFile(cfgPath, JSON.stringify({ ...cfg, modules_to_save: ["lm_head"] }));
    await expect(exportGgufAdapter(adapter, join(tmp, "x.gguf"))).rejects.toThrow(/modules_to_save \["lm_head"\]/);
    await writeFile(cfgPath, JSON.stringify(cfg));
  });
});

describe("exportGguf refuses what llama.cpp would run differently", () => {
  test("a SentencePiece-style tokenizer, an unknown pre-tokenizer, a model with LoRA layers", async () => {
    const dir = join(tmp, "odd-tok");
    await cp(join(HF_FIXTURES, "llama"), dir, { recursive: true });
    const tok = JSON.parse(await Bun.file(join(dir, "tokenizer.json")).text());
    await writeFile(join(dir, "tokenizer.json"), JSON.stringify({ ...tok, pre_tokenizer: { type: "Whitespace" } }));
    await expect(exportGguf(dir, join(tmp, "x.gguf"))).rejects.toThrow(/pre_tokenizer .*Whitespace.* is not one llama.cpp knows by name/);
    await writeFile(join(dir, "tokenizer.json"), JSON.stringify({ ...tok, model: { ...tok.model, byte_fallback: true } }));
    await expect(exportGguf(dir, join(tmp, "x.gguf"))).rejects.toThrow(/a BPE with byte_fallback must be SentencePiece-style/);
    const { model } = await loadPretrained(join(HF_FIXTURES, "llama"), { tokenizer: false });
    applyLora(model, { r: 2, loraAlpha: 4, targetModules: ["q_proj"] });
    await expect(exportGguf(model as any, join(tmp, "x.gguf"), { tokenizerDir: join(HF_FIXTURES, "llama") })).rejects.toThrow(/has no GGUF name .*mergeAndUnload/);
    model.dispose();
  });
});
