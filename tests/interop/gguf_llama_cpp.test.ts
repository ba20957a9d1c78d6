// kiln's GGUF files checked by llama.cpp itself (node-llama-cpp 3.21.1's prebuilt CPU build, this
// folder's package.json): its reference quantizers give the same bytes as kiln's; it loads every
// exported file and its next-token log-probabilities on fixed token ids, and its greedy
// continuations, match kiln's; it tokenizes as kiln does; a LoRA adapter GGUF moves it exactly as
// kiln's adapter does. Models are the HF fixtures and kiln-made ones (no downloads).
//
// Tolerances, on log-probabilities (max over positions and the whole vocabulary; logits span ~5):
// - F32 llama/qwen2 1e-4: both compute in f32 (llama.cpp with an F32 KV cache and flash attention
//   off: its CPU flash-attention kernel rounds through f16, ~1e-3); measured ~4e-6.
// - F32 gpt2 5e-3: llama.cpp's CPU GELU reads an f16 table (GGML_GELU_FP16); measured ~1e-3.
// - quantized and 16-bit files are compared with kiln running the same file's weights (loadGguf,
//   dequantized to f32), so the only difference is llama.cpp's activation rounding: its CPU matmul
//   converts activations to the weights' dot type (F16 for F16, BF16 for BF16, Q8_0 for Q8_0/Q4_0/
//   Q4_1/Q5_0, Q8_K for k-quants): F16 2e-2 (measured ~5e-3), BF16 0.1 (~3e-2), 8-bit activations
//   0.4 (~0.05-0.18). That these tolerances still bite: the 4-bit files are much further (>3x) from
//   the unquantized model, and a file with unpermuted q/k rows is >0.05 off even in F32.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dlopen, FFIType, ptr } from "bun:ffi";
import { readGguf, writeGguf } from "../../src/io/gguf.ts";
import { exportGguf, fromGgufLayout, type GGUFQuantization } from "../../src/io/gguf_export.ts";
import { exportGgufAdapter } from "../../src/io/gguf_adapter.ts";
import { loadGguf } from "../../src/io/gguf_load.ts";
import { dequantize, quantize, type KilnType } from "../../src/io/gguf_quants.ts";
import { loadPretrained, type PretrainedModel } from "../../src/models/index.ts";
import { applyLora, loraLayers } from "../../src/nn/lora_model.ts";
import { saveAdapter } from "../../src/io/peft.ts";
import { loadTokenizer } from "../../src/data/tokenizer.ts";
import { fromArray, useBackend } from "../../src/tensor/tensor.ts";
import { scope } from "../../src/tensor/memory.ts";
import { noGrad } from "../../src/autograd/tape.ts";
import { getBackend } from "../backends.ts";
import { HF_FIXTURES, kQuantLlamaConfig, LLAMA2_TOKENIZER, llama2VocabConfig, makeModelFolder, mistralConfig } from "../io/gguf_models.ts";
import { LLAMA_CPP_LIB_DIR, llamaCppGreedy, llamaCppLogProbs, llamaCppTokenize, requireLlamaCpp } from "./llama_cpp.ts";

const run = requireLlamaCpp("tests/interop/gguf_llama_cpp.test.ts");
const tmp = await mkdtemp(join(tmpdir(), "kiln-interop-"));
afterAll(() => rm(tmp, { recursive: true, force: true }));
beforeAll(async () => useBackend(await getBackend("wasm")));

const IDS = [5, 17, 42, 100, 3, 250, 7, 9, 11, 12];

/** kiln's next-token log-probabilities after each prefix of ids ([T][V], float64 log-softmax of its logits). */
async function kilnLogProbs(model: PretrainedModel, ids: number[]): Promise<Float64Array[]> {
  const out = scope(() => noGrad(() => model.forward(fromArray(Int32Array.from(ids), [1, ids.length], { dtype: "i32" }))));
  const L = (await out.data()) as Float32Array;
  out.dispose();
  const V = L.length / ids.length;
  return ids.map((_, t) => {
    const row = L.subarray(t * V, (t + 1) * V);
    let m = -Infinity;
    for (const x of row) m = Math.max(m, x);
    let z = 0;
    for (const x of row) z += Math.exp(x - m);
    return Float64Array.from(row, (x) => x - m - Math.log(z));
  });
}

function maxDiff(a: Float64Array[], b: Float64Array[]): number {
  let d = 0;
  a.forEach((row, t) => row.forEach((x, v) => (d = Math.max(d, Math.abs(x - b[t][v])))));
  return d;
}

/**
 * llama.cpp's greedy continuation checked against kiln: at every step its token must be kiln's argmax,
 * or within `tol` of it (a near-tie the two computations may break differently).
 */
async function expectSameGreedy(file: string, model: PretrainedModel, n: number, tol: number): Promise<void> {
  const prompt = IDS.slice(0, 4);
  const theirs = await llamaCppGreedy(file, prompt, n);
  expect(theirs.length).toBe(n);
  const lp = await kilnLogProbs(model, [...prompt, ...theirs.slice(0, -1)]);
  theirs.forEach((token, i) => {
    const row = lp[prompt.length - 1 + i];
    const best = row.reduce((b, x, v) => (x > row[b] ? v : b), 0);
    if (token !== best) expect(row[best] - row[token]).toBeLessThan(2 * tol);
  });
}

const CPU = process.platform === "linux" && process.arch === "x64";

describe.if(run)("llama.cpp's reference quantizers (libggml-base, through FFI)", () => {
  test.if(CPU)("kiln's quantizers give the bytes of quantize_row_*_ref; its dequantizers the floats of dequantize_row_*", () => {
    const sig = { args: [FFIType.ptr, FFIType.ptr, FFIType.i64], returns: FFIType.void } as const;
    const refs = ["q4_0", "q4_1", "q5_0", "q8_0", "q4_K", "q6_K"];
    const lib: { symbols: Record<string, (...args: unknown[]) => void>; close(): void } = dlopen(join(LLAMA_CPP_LIB_DIR, "libggml-base.so"), {
      ...Object.fromEntries(refs.flatMap((t) => [[`quantize_row_${t}_ref`, sig], [`dequantize_row_${t}`, sig]])),
      ggml_fp32_to_fp16_row: sig, ggml_fp32_to_bf16_row_ref: sig,
    }) as never;
    let s = 99;
    const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
    const n = 256 * 48;
    const x = Float32Array.from({ length: n }, (_, i) => (u() - 0.5) * (i % 61 === 0 ? 20 : 1) * (u() < 0.03 ? 0 : 1));
    x.fill(0, 0, 256); // all-zero super-block
    x.fill(0.25, 256, 512); // constant block
    for (let i = 512; i < 768; i++) x[i] = -Math.abs(x[i]); // negative-only block
    x[800] = 1e4; // one outlier
    try {
      for (const t of refs) {
        const type = t.toUpperCase().replace("_K", "_K") as KilnType;
        const ours = quantize(type, x, 256);
        const theirs = new Uint8Array(ours.length);
        lib.symbols[`quantize_row_${t}_ref`](ptr(x), ptr(theirs), n);
        expect({ type, firstDifferentByte: ours.findIndex((b, i) => b !== theirs[i]) }).toEqual({ type, firstDifferentByte: -1 });
        const back = new Float32Array(n);
        lib.symbols[`dequantize_row_${t}`](ptr(theirs), ptr(back), n);
        expect(Array.from(dequantize(type, theirs, n))).toEqual(Array.from(back));
      }
      const f16 = new Uint16Array(n);
      lib.symbols.ggml_fp32_to_fp16_row(ptr(x), ptr(f16), n);
      expect(quantize("F16", x, 256)).toEqual(new Uint8Array(f16.buffer));
      const bf16 = new Uint16Array(n);
      lib.symbols.ggml_fp32_to_bf16_row_ref(ptr(x), ptr(bf16), n);
      expect(quantize("BF16", x, 256)).toEqual(new Uint8Array(bf16.buffer));
    } finally {
      lib.close();
    }
  });
});

describe.if(run)("llama.cpp runs kiln's F32 exports as kiln does", () => {
  for (const [family, tol] of [["llama", 1e-4], ["qwen2", 1e-4], ["gpt2", 5e-3]] as const) {
    test(`${family}: log-probs within ${tol} of kiln's, same greedy continuation, same tokenization`, async () => {
      const file = join(tmp, `${family}.f32.gguf`);
      await exportGguf(join(HF_FIXTURES, family), file, { quantization: "f32" });
      const { model } = await loadPretrained(join(HF_FIXTURES, family), { tokenizer: false });
      const ours = await kilnLogProbs(model, IDS);
      const theirs = await llamaCppLogProbs(file, IDS, 300);
      expect(maxDiff(ours, theirs)).toBeLessThan(tol);
      await expectSameGreedy(file, model, 12, tol);
      model.dispose();
      const tok = await loadTokenizer(join(HF_FIXTURES, family));
      for (const text of ["hello world", "ab ab abc  x\n\ny", "The quick brown fox<|endoftext|>jumps", "naïve café 123 4567"]) {
        expect(await llamaCppTokenize(file, text)).toEqual(tok.encode(text));
      }
    });
  }

  test("mistral (kiln-made, 4 query heads sharing 1 kv head): written as llama, within 1e-4, same greedy", async () => {
    const dir = join(tmp, "mistral");
    const model = await makeModelFolder(mistralConfig(), dir, await getBackend("wasm"), 3);
    const file = join(tmp, "mistral.f32.gguf");
    await exportGguf(dir, file, { quantization: "f32" });
    expect((await readGguf(file)).get("general.architecture")).toBe("llama");
    expect(maxDiff(await kilnLogProbs(model, IDS), await llamaCppLogProbs(file, IDS, 300))).toBeLessThan(1e-4);
    await expectSameGreedy(file, model, 12, 1e-4);
    model.dispose();
  });

  test("Llama 2's SentencePiece-style tokenizer (32000 pieces, byte fallback): llama.cpp tokenizes as kiln, log-probs within 1e-4", async () => {
    const dir = join(tmp, "llama2-vocab");
    const model = await makeModelFolder(llama2VocabConfig(), dir, await getBackend("wasm"), 4, LLAMA2_TOKENIZER);
    const file = join(tmp, "llama2-vocab.f32.gguf");
    await exportGguf(dir, file, { quantization: "f32" });
    const tok = await loadTokenizer(LLAMA2_TOKENIZER);
    for (const text of ["Hello world", "The quick brown fox jumps over the lazy dog.", "naïve café 12345 — 日本語 🙂", "  leading spaces\nand\ttabs", "unbelievably antidisestablishmentarianism"]) {
      expect(await llamaCppTokenize(file, text)).toEqual(tok.encode(text, { addSpecialTokens: false }));
    }
    const ids = [1, 15043, 3186, 29892, 306, 626, 263, 1243];
    expect(maxDiff(await kilnLogProbs(model, ids), await llamaCppLogProbs(file, ids, 32000))).toBeLessThan(1e-4);
    model.dispose();
  });

  test("a llama file with q/k rows left in HF's order is visibly wrong (the permutation is needed)", async () => {
    const good = join(tmp, "llama.f32.gguf");
    const f = await readGguf(good);
    const { config } = await loadPretrained(join(HF_FIXTURES, "llama"), { tokenizer: false });
    const heads = (name: string) => (name.includes("attn_q.") ? (config as any).nHead : (config as any).nKvHead);
    const tensors = await Promise.all(f.tensors.map(async (t) => {
      const data = await f.read(t.name);
      const unpermuted = /attn_[qk]\.weight$/.test(t.name) ? fromGgufLayout(data, t.shape, { kind: "rope", heads: heads(t.name) }) : data;
      return { name: t.name, shape: t.shape, type: "F32" as const, data: new Uint8Array(unpermuted.buffer) };
    }));
    const bad = join(tmp, "llama.unpermuted.gguf");
    await writeGguf(bad, f.metadata, tensors);
    const { model } = await loadPretrained(join(HF_FIXTURES, "llama"), { tokenizer: false });
    expect(maxDiff(await kilnLogProbs(model, IDS), await llamaCppLogProbs(bad, IDS, 300))).toBeGreaterThan(0.05);
    model.dispose();
  });
});

describe.if(run)("llama.cpp runs kiln's quantized exports as kiln runs the same file", () => {
  const TOL: Record<string, number> = { f16: 2e-2, bf16: 0.1, q8_0: 0.4, q4_0: 0.4, q4_1: 0.4, q4_k: 0.4, q6_k: 0.4 };
  let kDir = "";
  beforeAll(async () => {
    kDir = join(tmp, "k-llama");
    (await makeModelFolder(kQuantLlamaConfig(), kDir, await getBackend("wasm"))).dispose();
  });
  const cases: [string, GGUFQuantization, KilnType][] = [
    ["llama", "f16", "F16"], ["llama", "bf16", "BF16"], ["llama", "q8_0", "Q8_0"], ["llama", "q4_0", "Q4_0"], ["llama", "q4_1", "Q4_1"],
    ["k", "q4_k", "Q4_K"], ["k", "q6_k", "Q6_K"], ["k", "q4_0", "Q4_0"],
  ];
  for (const [which, q, type] of cases) {
    test(`${which === "k" ? "llama (dims multiples of 256)" : "llama fixture"} ${q}: log-probs within ${TOL[q]}, greedy agrees`, async () => {
      const dir = which === "k" ? kDir : join(HF_FIXTURES, "llama");
      const file = join(tmp, `${which}.${q}.gguf`);
      const { types } = await exportGguf(dir, file, { quantization: q });
      expect(types[type]).toBe(16); // every 2-D weight in the asked type: no fallback hides the test
      const g = await loadGguf(file);
      const theirs = await llamaCppLogProbs(file, IDS, 300);
      const d = maxDiff(await kilnLogProbs(g.model, IDS), theirs);
      expect(d).toBeLessThan(TOL[q]);
      await expectSameGreedy(file, g.model, 12, TOL[q]);
      if (q.startsWith("q4")) {
        const { model } = await loadPretrained(dir, { tokenizer: false });
        expect(maxDiff(await kilnLogProbs(model, IDS), theirs)).toBeGreaterThan(3 * d); // llama.cpp ran the file's 4-bit weights
        model.dispose();
      }
      g.model.dispose();
    });
  }
});

describe.if(run)("llama.cpp applies kiln's LoRA adapter GGUF as kiln applies the PEFT adapter", () => {
  for (const [family, tol, rslora] of [["llama", 1e-4, false], ["qwen2", 1e-4, true], ["gpt2", 5e-3, false]] as const) {
    test(`${family}${rslora ? " (rsLoRA)" : ""}: base + adapter log-probs within ${tol} of kiln's adapter model`, async () => {
      const base = join(HF_FIXTURES, family);
      const { model } = await loadPretrained(base, { tokenizer: false });
      applyLora(model, { r: 4, loraAlpha: 8, targetModules: "all-linear", useRslora: rslora });
      let s = 5;
      const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296 - 0.5);
      for (const [, l] of loraLayers(model)) {
        const { A, B } = l.adapterWeights("default");
        for (const t of [A, B]) t.backend.upload(t.storage.buffer, Float32Array.from({ length: t.size }, () => 0.5 * u()));
      }
      const adapterDir = join(tmp, `${family}-adapter`);
      await saveAdapter(model, adapterDir, { baseModelNameOrPath: base });
      const baseFile = join(tmp, `${family}.base.gguf`);
      const adapterFile = join(tmp, `${family}.adapter.gguf`);
      await exportGguf(base, baseFile, { quantization: "f32" });
      await exportGgufAdapter(adapterDir, adapterFile, { quantization: "f32" });
      const ours = await kilnLogProbs(model, IDS);
      expect(maxDiff(ours, await llamaCppLogProbs(baseFile, IDS, 300, { lora: adapterFile }))).toBeLessThan(tol);
      expect(maxDiff(ours, await llamaCppLogProbs(baseFile, IDS, 300))).toBeGreaterThan(0.5); // the adapter matters
      model.dispose();
    });
  }
});
