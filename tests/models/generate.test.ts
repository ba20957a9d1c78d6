// generate / stream / streamTokens (src/models/generate.ts) on a random tiny GPT and on a scripted
// model whose greedy choice is a fixed token sequence: greedy equals argmax by full recompute, the
// KV-cache decode equals recompute (also past blockSize), seeded sampling repeats, stop tokens and
// stop strings end generation as HF does, streamed pieces concatenate to the text (an emoji split
// over byte-level tokens included), and 200 decode steps leave device memory flat.

import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { GPT } from "../../src/models/gpt.ts";
import { KVCache } from "../../src/models/kv_cache.ts";
import { generate, resolveOptions, sample, stream, streamTokens, type CausalLM } from "../../src/models/generate.ts";
import { argmax } from "../../src/models/sampling.ts";
import { fromArray, useBackend, zeros, type Tensor } from "../../src/tensor/tensor.ts";
import { keep, scope } from "../../src/tensor/memory.ts";
import { noGrad } from "../../src/autograd/tape.ts";
import { seed } from "../../src/tensor/random.ts";
import { CharTokenizer, loadTokenizer } from "../../src/data/tokenizer.ts";
import type { Backend } from "../../src/backend/backend.ts";
import { loadPretrained } from "../../src/models/pretrained.ts";
import { readSafetensors } from "../../src/io/safetensors.ts";
import { backendNames, getBackend } from "../backends.ts";

// byte-level BPE with 640 ids; EOS "<|endoftext|>" = 0; "😀" encodes as four one-byte tokens
const tokenizer = await loadTokenizer(join(import.meta.dir, "..", "fixtures", "tokenizers", "shakespeare_llama3"));

function tinyGPT(blockSize = 48): GPT {
  seed(5);
  return new GPT({ vocabSize: tokenizer.vocabSize, blockSize, nLayer: 2, nHead: 2, nEmbd: 32 });
}

/** Greedy decoding the slow way: full forward over the (cropped) context, argmax of the last row. */
async function greedyByRecompute(model: GPT, prompt: number[], n: number): Promise<number[]> {
  const ids = [...prompt];
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const ctx = ids.slice(-model.config.blockSize);
    const row = scope(() => noGrad(() => model.forward(fromArray(Int32Array.from(ctx), [1, ctx.length], { dtype: "i32" })).narrow(1, ctx.length - 1, 1)));
    const next = argmax((await row.data()) as Float32Array);
    row.dispose();
    ids.push(next);
    out.push(next);
  }
  return out;
}

/**
 * A model whose logits at absolute position p put 10 on script[p − promptLength + 1] (0 elsewhere):
 * greedy generation reproduces the script exactly. Keeps a real KVCache for the position count.
 */
class ScriptedLM implements CausalLM {
  training = true;
  readonly config: { blockSize: number; vocabSize: number };
  readonly #weight: Tensor;
  constructor(readonly script: number[], readonly promptLength: number, vocabSize = tokenizer.vocabSize, backend?: Backend) {
    this.config = { blockSize: 512, vocabSize };
    this.#weight = keep(zeros([1], { backend }));
  }
  forward(ids: Tensor, opts?: { cache?: KVCache }): Tensor {
    const [, T] = ids.shape;
    const start = opts?.cache?.length ?? 0;
    const V = this.config.vocabSize;
    const logits = new Float32Array(T * V);
    for (let t = 0; t < T; t++) {
      const next = this.script[start + t - this.promptLength + 1];
      if (next !== undefined) logits[t * V + next] = 10;
    }
    opts?.cache?.advance(T);
    return fromArray(logits, [1, T, V], { backend: ids.backend }); // [1, T, V]
  }
  newCache(batch: number, maxLength: number): KVCache {
    return new KVCache({ layers: 1, batch, maxLength, kvHeads: 1, headDim: 1, backend: this.#weight.backend });
  }
  parameters(): Tensor[] {
    return [this.#weight];
  }
  train(flag = true): void {
    this.training = flag;
  }
  dispose(): void {
    this.#weight.dispose();
  }
}

async function collect(it: AsyncIterable<string>): Promise<string[]> {
  const pieces: string[] = [];
  for await (const p of it) pieces.push(p);
  return pieces;
}

describe.each(backendNames)("generate on %s", (name) => {
  test("greedy equals argmax by full recompute, with and without the KV cache (past blockSize too)", async () => {
    useBackend(await getBackend(name));
    const model = tinyGPT(24);
    const prompt = tokenizer.encode("To be, or not");
    const want = await greedyByRecompute(model, prompt, 30); // prompt + 30 > blockSize 24: the window slides
    const cached = await generate(model, null, prompt, { maxNewTokens: 30, stopTokens: [] });
    const uncached = await generate(model, null, prompt, { maxNewTokens: 30, stopTokens: [], useCache: false });
    expect(cached.tokens).toEqual(want);
    expect(uncached.tokens).toEqual(want);
    expect(cached.finishReason).toBe("length");
    expect(cached.timings.prefillTokens).toBe(prompt.length);
    expect(cached.timings.decodeTokens).toBe(29);
    model.dispose();
  });

  test("KV-cache decode chooses the same tokens as recompute when sampling (seeded)", async () => {
    useBackend(await getBackend(name));
    const model = tinyGPT(64);
    const opts = { maxNewTokens: 40, temperature: 0.9, topK: 20, topP: 0.95, repetitionPenalty: 1.2, seed: 11, stopTokens: [] };
    const a = await generate(model, tokenizer, "Shall I", opts);
    const b = await generate(model, tokenizer, "Shall I", { ...opts, useCache: false });
    expect(a.tokens).toEqual(b.tokens);
    expect(a.text).toBe(b.text);
    model.dispose();
  });
});

describe.each(backendNames)("generate vs PyTorch greedy tokens on %s", (name) => {
  // tests/fixtures/make_hf_models.py: 8 greedy tokens per prompt row by full recompute in float64
  test.each(["gpt2", "llama", "qwen2"])("%s fixture: cached and uncached decode give the reference tokens", async (family) => {
    useBackend(await getBackend(name));
    const dir = join(import.meta.dir, "..", "fixtures", "hf", family);
    const ref = await readSafetensors(join(dir, "reference.safetensors"));
    const ids = (await ref.read("input_ids")) as Int32Array; // [B, T]
    const greedy = (await ref.read("greedy_tokens")) as Int32Array; // [B, NEW]
    const [B, T] = ref.info("input_ids").shape;
    const NEW = ref.info("greedy_tokens").shape[1];
    const { model, generationConfig } = await loadPretrained(dir);
    for (let b = 0; b < B; b++) {
      const prompt = Array.from(ids.subarray(b * T, (b + 1) * T));
      const want = Array.from(greedy.subarray(b * NEW, (b + 1) * NEW));
      for (const useCache of [true, false]) {
        const r = await generate(model, null, prompt, { maxNewTokens: NEW, generationConfig, stopTokens: [], useCache });
        expect(r.tokens).toEqual(want);
      }
    }
    model.dispose();
  });
});

describe("generate (wasm)", () => {
  test("same seed, same text; another seed, another text; top-k 1 equals greedy", async () => {
    useBackend(await getBackend("wasm"));
    const model = tinyGPT(64);
    const run = (opts: object) => generate(model, tokenizer, "Now is the", { maxNewTokens: 24, stopTokens: [], ...opts });
    const s1 = await run({ temperature: 1, seed: 1 });
    expect((await run({ temperature: 1, seed: 1 })).text).toBe(s1.text);
    expect((await run({ temperature: 1, seed: 2 })).tokens).not.toEqual(s1.tokens);
    const greedy = await run({});
    expect((await run({ temperature: 1, topK: 1, seed: 3 })).tokens).toEqual(greedy.tokens);
    expect(greedy.text).toBe(tokenizer.decode(greedy.tokens, { skipSpecialTokens: true }));
    model.dispose();
  });

  test("streamed pieces concatenate to generate()'s text; the training flag is left as it is", async () => {
    useBackend(await getBackend("wasm"));
    const model = tinyGPT(64);
    const opts = { maxNewTokens: 30, temperature: 1.2, seed: 4, stopTokens: [] };
    const whole = await generate(model, tokenizer, "Friends,", opts);
    const pieces = await collect(stream(model, tokenizer, "Friends,", opts));
    expect(pieces.join("")).toBe(whole.text);
    expect(pieces.every((p) => p.length > 0)).toBe(true); // (a random model emits invalid UTF-8 too: U+FFFD is text here)
    const ids: number[] = [];
    for await (const id of streamTokens(model, tokenizer, "Friends,", opts)) ids.push(id);
    expect(ids).toEqual(whole.tokens);
    expect(model.training).toBe(true);
    model.eval();
    await generate(model, null, [1, 2], { maxNewTokens: 2 });
    expect(model.training).toBe(false);
    model.dispose();
  });

  test("200 decode steps leave device memory flat; breaking off a stream frees the cache", async () => {
    const backend = await getBackend("wasm");
    useBackend(backend);
    const model = tinyGPT(256);
    await generate(model, null, [1, 2, 3], { maxNewTokens: 2 }); // GPT keeps its position ids per prompt length
    const base = backend.stats().allocatedBytes;
    const seen: number[] = [];
    let step = 0;
    for await (const _ of streamTokens(model, null, [1, 2, 3], { maxNewTokens: 210, temperature: 1, seed: 9, stopTokens: [] })) {
      if (++step >= 10) seen.push(backend.stats().allocatedBytes);
    }
    expect(seen.length).toBe(201);
    expect(new Set(seen).size).toBe(1); // the same bytes live at step 10 and at step 210
    expect(backend.stats().allocatedBytes).toBe(base); // the cache went with the loop
    let n = 0;
    for await (const _ of stream(model, tokenizer, [1, 2, 3], { maxNewTokens: 100, temperature: 1, seed: 1, stopTokens: [] })) if (++n === 5) break;
    expect(backend.stats().allocatedBytes).toBe(base);
    expect(model.training).toBe(true);
    model.dispose();
  });

  test("sample() (kiln train's end-of-run sample) returns new ids without stopping at any token", async () => {
    useBackend(await getBackend("wasm"));
    const model = new GPT({ vocabSize: 5, blockSize: 8, nLayer: 1, nHead: 1, nEmbd: 8 });
    const ids = await sample(model, [0, 1], { maxNewTokens: 20, temperature: 1 });
    expect(ids.length).toBe(20);
    expect(ids.every((i) => i >= 0 && i < 5)).toBe(true);
    model.dispose();
  });
});

describe("stop tokens and stop strings (scripted model)", () => {
  const promptText = "Hi";
  const scripted = async (text: string, tail: number[] = []) => {
    useBackend(await getBackend("wasm"));
    const prompt = tokenizer.encode(promptText);
    return { prompt, model: new ScriptedLM([...tokenizer.encode(text), ...tail], prompt.length) };
  };

  test("the script comes back verbatim under greedy decoding, cached or not", async () => {
    const { prompt, model } = await scripted(" there, friend");
    for (const useCache of [true, false]) {
      const r = await generate(model, tokenizer, prompt, { maxNewTokens: tokenizer.encode(" there, friend").length, useCache });
      expect(r.text).toBe(" there, friend");
    }
    model.dispose();
  });

  test("a stop token ends generation, stays in tokens and is not in the text", async () => {
    const { prompt, model } = await scripted(" good night", [0, 5, 6]);
    const r = await generate(model, tokenizer, prompt, { maxNewTokens: 50 }); // EOS 0 from the tokenizer
    expect(r.finishReason).toBe("stop");
    expect(r.stoppedBy).toBe(0);
    expect(r.tokens).toEqual([...tokenizer.encode(" good night"), 0]);
    expect(r.text).toBe(" good night");
    expect((await collect(stream(model, tokenizer, prompt, { maxNewTokens: 50 }))).join("")).toBe(" good night");
    // eos_token_id from generation_config.json (a list) wins over the tokenizer's
    const other = await generate(model, tokenizer, prompt, { maxNewTokens: 50, generationConfig: { eos_token_id: [5, 7] } });
    expect(other.stoppedBy).toBe(5);
    expect(other.tokens.at(-1)).toBe(5);
    // an explicit empty list disables stopping
    expect((await generate(model, tokenizer, prompt, { maxNewTokens: 5, stopTokens: [] })).finishReason).toBe("length");
    model.dispose();
  });

  test("a stop string cuts the text before it, also when it spans tokens, and is never streamed", async () => {
    const text = " sweet sorrow. Parting is such";
    const { prompt, model } = await scripted(text);
    for (const stop of [".", "w. Par", "sorrow. P"]) {
      const r = await generate(model, tokenizer, prompt, { maxNewTokens: 50, stopStrings: ["zzz", stop] });
      expect(r.finishReason).toBe("stop");
      expect(r.stoppedBy).toBe(stop);
      expect(r.text).toBe(text.slice(0, text.indexOf(stop)));
      const pieces = await collect(stream(model, tokenizer, prompt, { maxNewTokens: 50, stopStrings: [stop] }));
      expect(pieces.join("")).toBe(r.text);
      // generation stopped at the token that completed the stop string
      expect(tokenizer.decode(r.tokens).includes(stop)).toBe(true);
      expect(tokenizer.decode(r.tokens.slice(0, -1)).includes(stop)).toBe(false);
    }
    // a held-back prefix that never completes comes out at the end
    const r = await generate(model, tokenizer, prompt, { maxNewTokens: 50, stopStrings: ["such!"] });
    expect(r.text).toBe(text);
    expect((await collect(stream(model, tokenizer, prompt, { maxNewTokens: 50, stopStrings: ["such!"] }))).join("")).toBe(text);
    model.dispose();
  });

  test("an emoji split over byte-level tokens streams whole: pieces concatenate to the text", async () => {
    const text = " ok 😀 é 🎉🎉!";
    const ids = tokenizer.encode(text);
    expect(ids.some((id) => tokenizer.decode([id]).includes("\uFFFD"))).toBe(true); // it really is split
    const { prompt, model } = await scripted(text);
    const pieces = await collect(stream(model, tokenizer, prompt, { maxNewTokens: ids.length }));
    expect(pieces.join("")).toBe(text);
    for (const p of pieces) {
      expect(p.includes("\uFFFD")).toBe(false);
      expect(p.isWellFormed()).toBe(true); // no lone surrogate halves
    }
    expect(pieces).toContain("😀");
    model.dispose();
  });

  test("stop token and stop string together: whichever comes first wins", async () => {
    const { prompt, model } = await scripted(" a b c", [0]);
    expect((await generate(model, tokenizer, prompt, { maxNewTokens: 20, stopStrings: ["b"] })).stoppedBy).toBe("b");
    expect((await generate(model, tokenizer, prompt, { maxNewTokens: 20, stopStrings: ["zz"] })).stoppedBy).toBe(0);
    model.dispose();
  });
});

describe("options", () => {
  const tok = CharTokenizer.fromText("abc");
  test("generation_config.json gives the defaults; explicit options win", () => {
    const g = { do_sample: true, temperature: 0.7, top_k: 20, top_p: 0.9, repetition_penalty: 1.1, eos_token_id: [1, 2], max_new_tokens: 33 };
    const r = resolveOptions({ generationConfig: g }, 5, undefined, tok);
    expect(r.sampling).toEqual({ temperature: 0.7, topK: 20, topP: 0.9, repetitionPenalty: 1.1 });
    expect(r.stopTokens).toEqual([1, 2]);
    expect(r.maxNewTokens).toBe(33);
    expect(resolveOptions({ generationConfig: g, temperature: 0 }, 5).sampling.temperature).toBe(0);
    expect(resolveOptions({ generationConfig: { ...g, do_sample: false } }, 5).sampling.temperature).toBe(0);
    expect(resolveOptions({ generationConfig: { max_length: 20 } }, 5).maxNewTokens).toBe(15);
    expect(resolveOptions({ generationConfig: g, maxNewTokens: 4, topK: 0, stopTokens: [] }, 5)).toMatchObject({ maxNewTokens: 4, stopTokens: [] });
  });

  test("HF defaults: greedy unless asked; sampling knobs imply sampling; top_k 50", () => {
    expect(resolveOptions({}, 3).sampling).toEqual({ temperature: 0, topK: 50, topP: 1, repetitionPenalty: 1 });
    expect(resolveOptions({ temperature: 0.5 }, 3).sampling.temperature).toBe(0.5);
    expect(resolveOptions({ topP: 0.8 }, 3).sampling.temperature).toBe(1);
    expect(resolveOptions({}, 3).maxNewTokens).toBe(128);
  });

  test("bad input is named", async () => {
    useBackend(await getBackend("wasm"));
    const model = new GPT({ vocabSize: 3, blockSize: 8, nLayer: 1, nHead: 1, nEmbd: 4 });
    await expect(generate(model, null, "abc")).rejects.toThrow(/needs a tokenizer/);
    await expect(generate(model, null, [0, 7])).rejects.toThrow(/outside the vocabulary/);
    await expect(generate(model, null, [])).rejects.toThrow(/empty prompt/);
    await expect(generate(model, tok, "ab", { generationConfig: { top_p: 2 } })).rejects.toThrow(/top_p = 2/);
    await expect(generate(model, null, [0], { stopStrings: ["x"] })).rejects.toThrow(/stopStrings need a tokenizer/);
    expect((await generate(model, tok, "ab", { maxNewTokens: 0 })).tokens).toEqual([]);
    model.dispose();
  });
});
