// Tokenizers: kiln's one `Tokenizer` interface, the character-level `CharTokenizer` (Tiny Shakespeare
// default run, stored in a run folder via toJSON/fromJSON), and `loadTokenizer(dir)` for Hugging Face
// tokenizer folders (tokenizer.json + tokenizer_config.json). Not a trainer: see bpe_train.ts.
// Reference: nanoGPT data/shakespeare_char/prepare.py (char vocab = sorted unique characters).

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
