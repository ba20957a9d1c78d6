// Tokenizers: kiln's one `Tokenizer` interface, the character-level `CharTokenizer` (Tiny Shakespeare
// default run, stored in a run folder via toJSON/fromJSON), and `loadTokenizer(dir)` for Hugging Face
// tokenizer folders (tokenizer.json + tokenizer_config.json). Not a trainer: see bpe_train.ts.
// Reference: nanoGPT data/shakespeare_char/prepare.py (char vocab = sorted unique characters).
import { join } from "node:path";
import { readJson } from "../io/files.ts";
import { BPETokenizer, UnsupportedTokenizerError } from "./bpe.ts";
import { HFTokenizer } from "./hf_tokenizer.ts";
import { TokenizerFileError, validateTokenizerJSON } from "./tokenizer_check.ts";

export { TokenizerFileError };

/** Options for `Tokenizer.encode`. */
export interface EncodeOptions {
  /** Add the tokenizer's BOS/EOS etc. as its post-processor says (default true for HF tokenizers). */
  addSpecialTokens?: boolean;
}

/** Options for `Tokenizer.decode`. */
export interface DecodeOptions {
  /** Drop special tokens (BOS, EOS, pad, ...) from the output (default false). */
  skipSpecialTokens?: boolean;
}

/** What every kiln tokenizer offers. Ids are plain numbers; text is a JS string. */
export interface Tokenizer {
  /** Number of ids (largest id + 1, added tokens included). */
  readonly vocabSize: number;
  encode(text: string, opts?: EncodeOptions): number[];
  decode(ids: ArrayLike<number>, opts?: DecodeOptions): string;
  /** Id of a vocabulary token string, or undefined. */
  tokenToId(token: string): number | undefined;
  /** Vocabulary token string of an id, or undefined. */
  idToToken(id: number): string | undefined;
  /** Special tokens by content -> id (e.g. {"<|endoftext|>": 50256}). */
  readonly specialTokens: ReadonlyMap<string, number>;
  readonly eosTokenId?: number;
  readonly bosTokenId?: number;
}

/** Serialised form of a CharTokenizer (what a run folder stores). */
export interface CharTokenizerJSON {
  type: "char";
  /** The vocabulary in id order: chars[i] has id i. */
  chars: string[];
}

/**
 * Character-level tokenizer: one id per Unicode code point, ids in sorted code-point order.
 * `CharTokenizer.fromText("hello")` has vocab ["e","h","l","o"]. Unknown characters throw on encode.
 */
export class CharTokenizer implements Tokenizer {
  readonly chars: readonly string[];
  readonly specialTokens: ReadonlyMap<string, number> = new Map();
  readonly eosTokenId = undefined;
  readonly bosTokenId = undefined;
  readonly #index: Map<string, number>;

  constructor(chars: readonly string[]) {
    this.chars = [...chars];
    this.#index = new Map();
    for (let i = 0; i < this.chars.length; i++) {
      const c = this.chars[i];
      if ([...c].length !== 1) throw new Error(`[CharTokenizer] entry ${i} ${JSON.stringify(c)} is not one character`);
      if (this.#index.has(c)) throw new Error(`[CharTokenizer] duplicate character ${JSON.stringify(c)}`);
      this.#index.set(c, i);
    }
  }

  /** Vocabulary = the sorted unique code points of `text` (sorted by code point, like Python sorted(set(text))). */
  static fromText(text: string): CharTokenizer {
    const set = new Set<string>(text); // iterates code points, so surrogate pairs stay whole
    const chars = [...set].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
    return new CharTokenizer(chars);
  }

  static fromJSON(json: CharTokenizerJSON | string): CharTokenizer {
    const obj = typeof json === "string" ? (JSON.parse(json) as CharTokenizerJSON) : json;
    if (obj?.type !== "char" || !Array.isArray(obj.chars)) throw new Error(`[CharTokenizer] not a char tokenizer JSON`);
    return new CharTokenizer(obj.chars);
  }

  toJSON(): CharTokenizerJSON {
    return { type: "char", chars: [...this.chars] };
  }

  get vocabSize(): number {
    return this.chars.length;
  }

  encode(text: string, _opts?: EncodeOptions): number[] {
    const ids: number[] = [];
    for (const c of text) {
      const id = this.#index.get(c);
      if (id === undefined) throw new Error(`[CharTokenizer] character ${JSON.stringify(c)} is not in the vocabulary`);
      ids.push(id);
    }
    return ids;
  }

  decode(ids: ArrayLike<number>, _opts?: DecodeOptions): string {
    let s = "";
    for (let i = 0; i < ids.length; i++) {
      const c = this.chars[ids[i]];
      if (c === undefined) throw new Error(`[CharTokenizer] id ${ids[i]} out of range [0, ${this.chars.length})`);
      s += c;
    }
    return s;
  }

  tokenToId(token: string): number | undefined {
    return this.#index.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.chars[id];
  }
}

/** Which implementation `tokenizerFromJSON` uses: kiln's byte-level BPE when it applies ("auto"), always
 *  kiln's ("kiln", throws UnsupportedTokenizerError otherwise), or always @huggingface/tokenizers ("reference"). */
export type TokenizerImplementation = "auto" | "kiln" | "reference";

/**
 * Build a tokenizer from a parsed tokenizer.json (+ tokenizer_config.json). The JSON is validated first
 * (tokenizer_check.ts): a damaged file throws a TokenizerFileError naming `file` and the field.
 */
export function tokenizerFromJSON(
  tokenizerJson: unknown,
  tokenizerConfig: unknown = {},
  implementation: TokenizerImplementation = "auto",
  file = "tokenizer.json",
): Tokenizer {
  validateTokenizerJSON(tokenizerJson, file);
  try {
    if (implementation === "reference") return new HFTokenizer(tokenizerJson, tokenizerConfig);
    try {
      return BPETokenizer.fromJSON(tokenizerJson, tokenizerConfig);
    } catch (e) {
      if (implementation === "auto" && e instanceof UnsupportedTokenizerError)
        return new HFTokenizer(tokenizerJson, tokenizerConfig);
      throw e;
    }
  } catch (e) {
    if (e instanceof UnsupportedTokenizerError || e instanceof TokenizerFileError) throw e;
    // what the checks above do not cover (a bad regex, a malformed component): still name the file
    const message = (e as Error)?.message ?? String(e);
    throw new TokenizerFileError(`[tokenizer] ${file}: ${message.replace(/^\[tokenizer\] /, "")}`, { cause: e });
  }
}

/**
 * Load a Hugging Face tokenizer folder: tokenizer.json (+ tokenizer_config.json for eos/bos and the chat
 * template), or the older GPT-2 layout vocab.json + merges.txt. Example: `await loadTokenizer("models/gpt2")`.
 */
export async function loadTokenizer(dir: string, implementation: TokenizerImplementation = "auto"): Promise<Tokenizer> {
  const config = await readJson<any>(join(dir, "tokenizer_config.json"), "tokenizer");
  const json = await readJson<any>(join(dir, "tokenizer.json"), "tokenizer");
  if (json !== undefined) return tokenizerFromJSON(json, config ?? {}, implementation, join(dir, "tokenizer.json"));
  const vocab = await readJson<any>(join(dir, "vocab.json"), "tokenizer");
  const mergesFile = Bun.file(join(dir, "merges.txt"));
  if (vocab === undefined || !(await mergesFile.exists()))
    throw new Error(`[tokenizer] ${dir} has neither tokenizer.json nor vocab.json + merges.txt`);
  const files = `${join(dir, "vocab.json")} + merges.txt`;
  return tokenizerFromJSON(gpt2FilesToJSON(vocab, await mergesFile.text(), config ?? {}), config ?? {}, implementation, files);
}

/** The tokenizer.json equivalent of GPT-2's vocab.json + merges.txt (byte-level BPE, GPT-2 regex). */
export function gpt2FilesToJSON(vocab: Record<string, number>, mergesTxt: string, config: Record<string, any> = {}) {
  const merges = mergesTxt.split("\n").filter((l) => l.length > 0 && !l.startsWith("#version"));
  const added = Object.entries((config.added_tokens_decoder ?? {}) as Record<string, any>).map(([id, t]) => ({
    id: Number(id),
    content: t.content,
    single_word: !!t.single_word,
    lstrip: !!t.lstrip,
    rstrip: !!t.rstrip,
    normalized: t.normalized ?? true,
    special: t.special ?? true,
  }));
  const byteLevel = { type: "ByteLevel", add_prefix_space: !!config.add_prefix_space, trim_offsets: true, use_regex: true };
  return {
    version: "1.0",
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: byteLevel,
    decoder: byteLevel,
    model: { type: "BPE", dropout: null, unk_token: null, fuse_unk: false, byte_fallback: false, vocab, merges },
  };
}

