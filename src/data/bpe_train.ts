// Train a byte-level BPE tokenizer on text and write it as a Hugging Face tokenizer.json (merges in the
// ["a", "b"] pair form) + tokenizer_config.json, which loadTokenizer and @huggingface/tokenizers both read.
// Not an encoder (bpe.ts). Reference: tokenizers (Rust) src/models/bpe/trainer.rs: special tokens first,
// then the 256-byte alphabet in code-point order, then merges by pair count (ties: smaller id pair first);
// with byLine it reproduces BpeTrainer's merges exactly (tests/data/bpe_train.test.ts).
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { writeJsonAtomic } from "../io/atomic.ts";
import { BYTE_TO_CHAR, GPT2_PATTERN, LLAMA3_PATTERN, QWEN2_PATTERN, splitIsolated, toByteLevel, translateOnigurumaPattern } from "./pretokenize.ts";

/** Pre-tokenizer regex presets (the Oniguruma source as written into tokenizer.json). */
export const PATTERNS = { gpt2: GPT2_PATTERN, llama3: LLAMA3_PATTERN, qwen2: QWEN2_PATTERN } as const;

export interface BpeTrainOptions {
  /** Final vocabulary size, special tokens and the 256 byte tokens included. */
  vocabSize: number;
  /** Stop when the best pair occurs fewer times than this (default 2). */
  minFrequency?: number;
  /** Special tokens, given ids 0..k-1 (e.g. ["<|endoftext|>"]). */
  specialTokens?: string[];
  /** Pre-tokenizer: a preset name or an Oniguruma regex (default "gpt2"). */
  pattern?: keyof typeof PATTERNS | string;
  /** Written as eos_token/bos_token in tokenizer_config.json (default: the first special token). */
  eosToken?: string;
  bosToken?: string;
  /**
   * Pre-tokenize each line on its own, as the Rust trainer's train_from_files does (default false:
   * whole texts, so a newline+indent run such as "\n    " can become one token, as encode would split it).
   */
  byLine?: boolean;
}

export interface TrainedBpe {
  vocab: Map<string, number>;
  merges: [string, string][];
  /** The tokenizer.json object. */
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
}

/** Train on in-memory texts. Deterministic: same texts and options give the same file. */
export function trainBpe(texts: Iterable<string>, opts: BpeTrainOptions): TrainedBpe {
  const minFrequency = opts.minFrequency ?? 2;
  const specials = opts.specialTokens ?? [];
  const patternName = opts.pattern ?? "gpt2";
  const pattern = patternName in PATTERNS ? PATTERNS[patternName as keyof typeof PATTERNS] : patternName;
  const re = new RegExp(translateOnigurumaPattern(pattern), "gu");
  if (opts.vocabSize < specials.length + 256)
    throw new Error(`[bpe_train] vocabSize ${opts.vocabSize} is below ${specials.length} special + 256 byte tokens`);

  // 1. Count pre-tokens (as byte-level strings).
  const wordCounts = new Map<string, number>();
  const pieces: string[] = [];
  for (const whole of texts) {
    for (const text of opts.byLine ? whole.split(/(?<=\n)/) : [whole]) {
      pieces.length = 0;
      splitIsolated(text, re, pieces);
      for (const p of pieces) {
        const w = toByteLevel(p);
        wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
      }
    }
  }

  // 2. Initial vocabulary: special tokens, then the byte alphabet sorted by code point.
  const tokens: string[] = [...specials];
  const vocab = new Map<string, number>(specials.map((s, i) => [s, i]));
  for (const c of [...BYTE_TO_CHAR].sort((a, b) => a.charCodeAt(0) - b.charCodeAt(0))) {
    if (!vocab.has(c)) vocab.set(c, tokens.push(c) - 1);
  }

  // 3. Words as id arrays, pair counts, and which words hold each pair.
  const MUL = opts.vocabSize + 1;
  const words: number[][] = [];
  const counts: number[] = [];
  for (const [w, n] of wordCounts) {
    words.push([...w].map((c) => vocab.get(c)!));
    counts.push(n);
  }
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const addPair = (key: number, wi: number, delta: number) => {
    pairCount.set(key, (pairCount.get(key) ?? 0) + delta);
    if (delta > 0) {
      let s = pairWords.get(key);
      if (!s) pairWords.set(key, (s = new Set()));
      s.add(wi);
    }
  };
  words.forEach((w, wi) => {
    for (let i = 0; i + 1 < w.length; i++) addPair(w[i] * MUL + w[i + 1], wi, counts[wi]);
  });
  const heap = new PairHeap();
  for (const [key, n] of pairCount) heap.push(key, n);

  // 4. Merge the most frequent pair until the vocabulary is full.
  const merges: [string, string][] = [];
  while (tokens.length < opts.vocabSize && heap.size > 0) {
    const [key, n] = heap.pop();
    const current = pairCount.get(key) ?? 0;
    if (current !== n || n <= 0) {
      if (current > 0) heap.push(key, current); // stale entry: requeue with the true count
      continue;
    }
    if (n < minFrequency) break;
    const a = Math.floor(key / MUL);
    const b = key - a * MUL;
    const merged = tokens[a] + tokens[b];
    // Another pair may already have made this string ("ab"+"c" vs "a"+"bc"): reuse its id, as the Rust trainer.
    let id = vocab.get(merged);
    if (id === undefined) {
      id = tokens.push(merged) - 1;
      vocab.set(merged, id);
    }
    merges.push([tokens[a], tokens[b]]);
    const touched = new Set<number>();
    for (const wi of pairWords.get(key) ?? []) {
      const w = words[wi];
      const c = counts[wi];
      for (let i = 0; i + 1 < w.length; i++) {
        if (w[i] !== a || w[i + 1] !== b) continue;
        if (i > 0) {
          addPair(w[i - 1] * MUL + a, wi, -c);
          addPair(w[i - 1] * MUL + id, wi, c);
          touched.add(w[i - 1] * MUL + id);
        }
        if (i + 2 < w.length) {
          addPair(b * MUL + w[i + 2], wi, -c);
          addPair(id * MUL + w[i + 2], wi, c);
          touched.add(id * MUL + w[i + 2]);
        }
        addPair(key, wi, -c);
        w[i] = id;
        w.splice(i + 1, 1);
      }
    }
    pairWords.delete(key);
    pairCount.delete(key);
    for (const t of touched) if (pairCount.get(t)! > 0) heap.push(t, pairCount.get(t)!);
  }

  const tokenizerJson = toTokenizerJson(vocab, merges, specials, pattern);
  const eos = opts.eosToken ?? specials[0] ?? null;
  const bos = opts.bosToken ?? specials[0] ?? null;
  const tokenizerConfig = {
    tokenizer_class: "PreTrainedTokenizerFast",
    add_prefix_space: false,
    clean_up_tokenization_spaces: false,
    bos_token: bos,
    eos_token: eos,
    model_max_length: 1_000_000,
  };
  return { vocab, merges, tokenizerJson, tokenizerConfig };
}

/** The HF tokenizer.json layout for a byte-level BPE (Split regex + ByteLevel, as Llama 3 and Qwen2 do). */
function toTokenizerJson(vocab: Map<string, number>, merges: [string, string][], specials: string[], pattern: string) {
  const byteLevel = (useRegex: boolean) => ({ type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: useRegex });
  const pre =
    pattern === GPT2_PATTERN
      ? byteLevel(true)
      : {
          type: "Sequence",
          pretokenizers: [{ type: "Split", pattern: { Regex: pattern }, behavior: "Isolated", invert: false }, byteLevel(false)],
        };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: pre,
    post_processor: byteLevel(false),
    decoder: byteLevel(false),
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges,
    },
  };
}

/** Train on text files and write `outDir/tokenizer.json` + `outDir/tokenizer_config.json`. */
export async function trainBpeFiles(files: string[], outDir: string, opts: BpeTrainOptions): Promise<TrainedBpe> {
  const texts: string[] = [];
  for (const f of files) {
    const file = Bun.file(f);
    if (!(await file.exists())) throw new Error(`[bpe_train] no such file ${f}`);
    texts.push(await file.text());
  }
  const trained = trainBpe(texts, opts);
  await mkdir(outDir, { recursive: true });
  await writeJsonAtomic(join(outDir, "tokenizer.json"), trained.tokenizerJson);
  await writeJsonAtomic(join(outDir, "tokenizer_config.json"), trained.tokenizerConfig);
  return trained;
}

/** Max-heap of (pair key, count); ties go to the smaller pair key, i.e. the smaller (a, b) id pair. */
class PairHeap {
  #keys: number[] = [];
  #counts: number[] = [];
  get size(): number {
    return this.#keys.length;
  }
  #above(i: number, j: number): boolean {
    const ci = this.#counts[i];
    const cj = this.#counts[j];
    return ci > cj || (ci === cj && this.#keys[i] < this.#keys[j]);
  }
  #swap(i: number, j: number): void {
    [this.#keys[i], this.#keys[j]] = [this.#keys[j], this.#keys[i]];
    [this.#counts[i], this.#counts[j]] = [this.#counts[j], this.#counts[i]];
  }
  push(key: number, count: number): void {
    let i = this.#keys.push(key) - 1;
    this.#counts.push(count);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#above(i, p)) break;
      this.#swap(i, p);
      i = p;
    }
  }
  pop(): [number, number] {
    const top: [number, number] = [this.#keys[0], this.#counts[0]];
    const lastK = this.#keys.pop()!;
    const lastC = this.#counts.pop()!;
    if (this.#keys.length > 0) {
      this.#keys[0] = lastK;
      this.#counts[0] = lastC;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.#keys.length && this.#above(l, m)) m = l;
        if (r < this.#keys.length && this.#above(r, m)) m = r;
        if (m === i) break;
        this.#swap(i, m);
        i = m;
      }
    }
    return top;
  }
}
