// Incremental detokenization for streaming generation: turns token ids, one at a time, into text
// pieces that are final — never half a character (a byte-level token that ends inside a UTF-8
// sequence decodes to U+FFFD and is held back) and never the start of a stop string (held until it
// either completes the stop string, which truncates the text there, or stops matching).
// Each step decodes only a short window: [anchor token, new tokens], minus the anchor's own text, so
// tokenizers that strip a leading space (SentencePiece/Metaspace) keep the space between pieces.
// Reference: HF transformers TextStreamer (hold back until complete) and mlx-lm's detokenizers.

import type { Tokenizer } from "../data/tokenizer.ts";

const REPLACEMENT = "\uFFFD";

export interface DetokenizerOptions {
  /** the token before the first new one (the prompt's last), decoded for context only */
  anchor?: number;
  /** text is cut at the first occurrence of any of these, which is not part of the text */
  stopStrings?: readonly string[];
  /** drop special tokens from the text (default true, as HF's text-generation pipeline) */
  skipSpecialTokens?: boolean;
}

export class StreamingDetokenizer {
  /** true once a stop string has appeared: push() must not be called again */
  stopped = false;
  /** the stop string that ended the text, if any */
  stopString: string | undefined;

  readonly #tok: Tokenizer;
  readonly #stops: readonly string[];
  readonly #skip: boolean;
  /** every token pushed */
  readonly #tokens: number[] = [];
  /** text of the tokens before #segment, final */
  #committed = "";
  /** tokens since the last re-anchoring */
  #segment: number[] = [];
  #anchor: number | undefined;
  #anchorText = "";
  /** anchoring gave an inconsistent prefix for this tokenizer: decode everything each step */
  #fullDecode = false;
  /** the current text (committed + segment), possibly ending in held-back characters */
  #text = "";
  /** characters of #text already handed out */
  #emitted = 0;

  constructor(tokenizer: Tokenizer, { anchor, stopStrings = [], skipSpecialTokens = true }: DetokenizerOptions = {}) {
    this.#tok = tokenizer;
    this.#stops = stopStrings.filter((s) => s.length > 0);
    this.#skip = skipSpecialTokens;
    this.#setAnchor(anchor);
  }

  /** The text so far: everything handed out plus what is still held back (cut at a stop string). */
  get text(): string {
    return this.#text;
  }

  /** Adds one token; returns the text that became final ("" when none did). */
  push(id: number): string {
    if (this.stopped) throw new Error("[generate] detokenizer pushed after a stop string");
    this.#tokens.push(id);
    this.#segment.push(id);
    this.#text = this.#committed + this.#decodeSegment();
    const stop = this.#findStop();
    if (stop) {
      this.stopped = true;
      this.stopString = stop.string;
      this.#text = this.#text.slice(0, stop.at);
      return this.#emitUpTo(stop.at);
    }
    const piece = this.#emitUpTo(this.#safeEnd());
    this.#maybeReanchor();
    return piece;
  }

  /** The rest of the text (held-back characters included) once generation has ended. */
  finish(): string {
    return this.#emitUpTo(this.#text.length);
  }

  #emitUpTo(end: number): string {
    if (end <= this.#emitted) return "";
    const piece = this.#text.slice(this.#emitted, end);
    this.#emitted = end;
    return piece;
  }

  #decode(ids: number[]): string {
    return this.#tok.decode(ids, { skipSpecialTokens: this.#skip });
  }

  #decodeSegment(): string {
    if (this.#fullDecode) return this.#decode(this.#tokens);
    if (this.#anchor === undefined) return this.#decode(this.#segment);
    const withAnchor = this.#decode([this.#anchor, ...this.#segment]);
    if (withAnchor.startsWith(this.#anchorText)) return withAnchor.slice(this.#anchorText.length);
    // a tokenizer whose decode is not prefix-stable: fall back to decoding all new tokens each step
    this.#fullDecode = true;
    this.#committed = "";
    return this.#decode(this.#tokens);
  }

  /** Earliest stop-string occurrence in text not yet handed out, short of a trailing unfinished character. */
  #findStop(): { at: number; string: string } | null {
    let best: { at: number; string: string } | null = null;
    let end = this.#text.length;
    while (end > this.#emitted && this.#text[end - 1] === REPLACEMENT) end--;
    const text = this.#text.slice(0, end);
    for (const s of this.#stops) {
      // handed-out text holds no stop string nor a suffix that starts one: search from there
      const at = text.indexOf(s, this.#emitted);
      if (at >= 0 && (!best || at < best.at)) best = { at, string: s };
    }
    return best;
  }

  /** Where final text ends: before a trailing U+FFFD run (an unfinished character) and before any suffix that begins a stop string. */
  #safeEnd(): number {
    const t = this.#text;
    let end = t.length;
    while (end > this.#emitted && t[end - 1] === REPLACEMENT) end--;
    let hold = 0;
    for (const s of this.#stops) {
      for (let n = Math.min(s.length - 1, end - this.#emitted); n > hold; n--) {
        if (t.startsWith(s.slice(0, n), end - n)) {
          hold = n;
          break;
        }
      }
    }
    return end - hold;
  }

  /** Moves the window on when the segment decodes cleanly and its last token can stand as the next anchor. */
  #maybeReanchor(): void {
    if (this.#fullDecode) return;
    const text = this.#text;
    if (text.endsWith(REPLACEMENT)) return;
    const last = this.#segment[this.#segment.length - 1];
    const lastText = this.#decode([last]);
    if (lastText.includes(REPLACEMENT)) return;
    this.#committed = text;
    this.#segment = [];
    this.#anchor = last;
    this.#anchorText = lastText;
  }

  #setAnchor(anchor: number | undefined): void {
    if (anchor === undefined) return;
    const text = this.#decode([anchor]);
    if (text.includes(REPLACEMENT)) return; // a partial character: decode without context instead
    this.#anchor = anchor;
    this.#anchorText = text;
  }
}
