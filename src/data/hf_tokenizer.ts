// Adapter from the reference library @huggingface/tokenizers to kiln's Tokenizer interface. loadTokenizer
// uses it for tokenizer.json files that kiln's own byte-level BPE (bpe.ts) does not handle exactly
// (SentencePiece-style Metaspace/byte_fallback BPE as in Llama 2 and Mistral, WordPiece, Unigram, ...).
// Decoding never applies clean_up_tokenization_spaces, so decode(encode(x)) round-trips.
import { Tokenizer as HFTokenizerImpl } from "@huggingface/tokenizers";
import { configTokenId } from "./bpe.ts";
import type { DecodeOptions, EncodeOptions, Tokenizer } from "./tokenizer.ts";

// biome-ignore lint: tokenizer.json is loosely typed by nature
type Json = any;

export class HFTokenizer implements Tokenizer {
  readonly implementation = "hf-tokenizers";
  readonly vocabSize: number;
  readonly specialTokens: ReadonlyMap<string, number>;
  readonly eosTokenId?: number;
  readonly bosTokenId?: number;
  readonly #impl: HFTokenizerImpl;

  constructor(tokenizerJson: Json, tokenizerConfig: Json = {}) {
    // The library reads truncation/padding from the JSON; kiln never truncates inside encode.
    const json = { ...tokenizerJson, truncation: null, padding: null };
    this.#impl = new HFTokenizerImpl(json, { ...tokenizerConfig, clean_up_tokenization_spaces: false });
    let max = -1;
    for (const id of this.#impl.get_vocab(true).values()) max = Math.max(max, id);
    this.vocabSize = max + 1;
    this.specialTokens = new Map(
      (tokenizerJson.added_tokens ?? []).filter((t: Json) => t.special).map((t: Json) => [t.content, t.id]),
    );
    this.eosTokenId = configTokenId(tokenizerConfig.eos_token, this);
    this.bosTokenId = configTokenId(tokenizerConfig.bos_token, this);
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    return this.#impl.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids;
  }

  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    return this.#impl.decode(Array.from(ids), {
      skip_special_tokens: opts.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: false,
    });
  }

  tokenToId(token: string): number | undefined {
    return this.#impl.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.#impl.id_to_token(id);
  }
}
