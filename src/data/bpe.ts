// kiln's byte-level BPE tokenizer, built from a Hugging Face tokenizer.json (GPT-2, Llama 3, Qwen2 styles):
// added-token split -> normalizer (NFC/NFKC/...) -> regex pre-tokenizer -> byte-level alphabet -> BPE merges
// by rank (leftmost first on ties) -> post-processor template. Not the trainer (bpe_train.ts) and not the
// loader (tokenizer.ts decides between this and the reference library). Reference: tokenizers (Rust)
// src/models/bpe/word.rs merge_all, src/tokenizer/added_vocabulary.rs; outputs checked id-for-id against it.
import type { DecodeOptions, EncodeOptions, Tokenizer } from "./tokenizer.ts";
import {
  BYTE_TO_CHAR,
  CHAR_TO_BYTE,
  GPT2_PATTERN,
  splitIsolated,
  translateOnigurumaPattern,
  utf8Bytes,
} from "./pretokenize.ts";

/** Thrown when a tokenizer.json uses a component this implementation does not do exactly. */
export class UnsupportedTokenizerError extends Error {}

// biome-ignore lint: tokenizer.json is loosely typed by nature
type Json = any;

interface AddedToken {
  id: number;
  content: string;
  special: boolean;
  normalized: boolean;
  lstrip: boolean;
  rstrip: boolean;
}

const CACHE_LIMIT = 200_000;
const SMALL_WORD = 24; // words up to this many symbols merge with a plain scan; longer ones use a heap

/** Byte-level BPE tokenizer; construct with `BPETokenizer.fromJSON(tokenizerJson, tokenizerConfig)`. */
export class BPETokenizer implements Tokenizer {
  readonly implementation = "kiln-bpe";
  readonly vocabSize: number;
  readonly specialTokens: ReadonlyMap<string, number>;
  readonly eosTokenId?: number;
  readonly bosTokenId?: number;

  readonly #vocab: Map<string, number>;
  readonly #idToToken: string[];
  readonly #mergeRank: PairTable; // (a, b) -> rank
  readonly #mergeNew: Int32Array; // rank -> merged id
  readonly #byteId: Int32Array; // byte -> id of its one-char token, -1 if absent
  readonly #ignoreMerges: boolean;
  readonly #normalize: ((s: string) => string) | null;
  readonly #splitRegexes: RegExp[]; // applied in sequence, each "Isolated"
  readonly #addPrefixSpace: boolean;
  readonly #rawAdded: RegExp | null; // added tokens with normalized: false, matched on the raw text
  readonly #normAdded: RegExp | null; // added tokens with normalized: true, matched after normalizing
  readonly #addedByContent: Map<string, AddedToken>;
  readonly #addedById: Map<number, AddedToken>;
  readonly #template: { prefix: number[]; suffix: number[] };
  readonly #cache = new Map<string, number[]>();

  private constructor(json: Json, config: Json) {
    const model = json.model ?? {};
    if (model.type !== "BPE") throw new UnsupportedTokenizerError(`model type ${model.type}`);
    for (const k of ["continuing_subword_prefix", "end_of_word_suffix"])
      if (model[k]) throw new UnsupportedTokenizerError(`BPE ${k} ${JSON.stringify(model[k])}`);
    if (model.dropout) throw new UnsupportedTokenizerError(`BPE dropout`);
    if (model.byte_fallback) throw new UnsupportedTokenizerError(`BPE byte_fallback`);
    this.#ignoreMerges = !!model.ignore_merges;

    // Vocabulary (model + added tokens).
    this.#vocab = new Map(Object.entries(model.vocab as Record<string, number>));
    this.#idToToken = [];
    for (const [t, id] of this.#vocab) this.#idToToken[id] = t;
    const added: AddedToken[] = (json.added_tokens ?? []).map((t: Json) => ({
      id: t.id,
      content: t.content,
      special: !!t.special,
      normalized: t.normalized ?? !t.special,
      lstrip: !!t.lstrip,
      rstrip: !!t.rstrip,
    }));
    if ((json.added_tokens ?? []).some((t: Json) => t.single_word))
      throw new UnsupportedTokenizerError(`added token with single_word`);
    this.#addedByContent = new Map(added.map((t) => [t.content, t]));
    this.#addedById = new Map(added.map((t) => [t.id, t]));
    for (const t of added) this.#idToToken[t.id] = t.content;
    this.vocabSize = this.#idToToken.length;
    this.specialTokens = new Map(added.filter((t) => t.special).map((t) => [t.content, t.id]));

    // Merges, in either the old "a b" string form or the new ["a", "b"] pair form.
    const merges: Json[] = model.merges ?? [];
    this.#mergeRank = new PairTable(merges.length);
    this.#mergeNew = new Int32Array(merges.length);
    merges.forEach((m, rank) => {
      const [a, b] = typeof m === "string" ? splitMergeString(m) : m;
      const ia = this.#vocab.get(a);
      const ib = this.#vocab.get(b);
      const inew = this.#vocab.get(a + b);
      if (ia === undefined || ib === undefined || inew === undefined)
        throw new Error(`[tokenizer] merge ${rank} ${JSON.stringify(m)} uses a token missing from the vocab`);
      this.#mergeRank.set(ia, ib, rank); // a repeated pair keeps its last rank, as the Rust crate
      this.#mergeNew[rank] = inew;
    });
    this.#byteId = new Int32Array(256);
    for (let b = 0; b < 256; b++) this.#byteId[b] = this.#vocab.get(BYTE_TO_CHAR[b]) ?? -1;
    if (model.unk_token != null && this.#byteId.some((x) => x < 0))
      throw new UnsupportedTokenizerError(`unk_token with an incomplete byte alphabet`);

    this.#normalize = makeNormalizer(json.normalizer);
    const pre = parsePreTokenizer(json.pre_tokenizer);
    this.#splitRegexes = pre.patterns.map((p) => new RegExp(translateOnigurumaPattern(p), "gu"));
    this.#addPrefixSpace = pre.addPrefixSpace;
    checkDecoder(json.decoder);
    this.#template = parsePostProcessor(json.post_processor);

    this.#rawAdded = addedRegex(added.filter((t) => !t.normalized));
    this.#normAdded = addedRegex(added.filter((t) => t.normalized));
    this.eosTokenId = configTokenId(config?.eos_token, this);
    this.bosTokenId = configTokenId(config?.bos_token, this);
  }

  /** Build from parsed tokenizer.json (+ optional tokenizer_config.json). Throws UnsupportedTokenizerError. */
  static fromJSON(tokenizerJson: Json, tokenizerConfig?: Json): BPETokenizer {
    return new BPETokenizer(tokenizerJson, tokenizerConfig ?? {});
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const ids: number[] = [];
    if (opts.addSpecialTokens ?? true) ids.push(...this.#template.prefix);
    const segments = splitAdded(text, this.#rawAdded, this.#addedByContent);
    for (const seg of segments) {
      if (typeof seg === "number") {
        ids.push(seg);
        continue;
      }
      const normalized = this.#normalize ? this.#normalize(seg) : seg;
      for (const sub of splitAdded(normalized, this.#normAdded, this.#addedByContent)) {
        if (typeof sub === "number") ids.push(sub);
        else this.#encodeSegment(sub, ids);
      }
    }
    if (opts.addSpecialTokens ?? true) ids.push(...this.#template.suffix);
    return ids;
  }

  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    const bytes: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      const tok = this.#idToToken[id];
      if (tok === undefined) {
        if (!(id >= 0 && id < this.vocabSize)) throw new Error(`[tokenizer] id ${id} out of range [0, ${this.vocabSize})`);
        continue;
      }
      const addedTok = this.#addedById.get(id);
      if (addedTok?.special && opts.skipSpecialTokens) continue;
      // ByteLevel decoder: map each char back to its byte; a token with a char outside the byte alphabet
      // (an added token such as "漢字") contributes its own UTF-8 bytes instead.
      const start = bytes.length;
      let ok = true;
      for (let j = 0; j < tok.length; j++) {
        const code = tok.charCodeAt(j);
        const b = code < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[code] : -1;
        if (b < 0) {
          ok = false;
          break;
        }
        bytes.push(b);
      }
      if (!ok) {
        bytes.length = start;
        utf8Bytes(tok, bytes);
      }
    }
    return UTF8.decode(new Uint8Array(bytes));
  }

  tokenToId(token: string): number | undefined {
    return this.#addedByContent.get(token)?.id ?? this.#vocab.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.#idToToken[id];
  }

  /** Pre-tokenize one added-token-free, normalized segment and BPE each piece into `ids`. */
  #encodeSegment(seg: string, ids: number[]): void {
    if (this.#addPrefixSpace && !seg.startsWith(" ")) seg = " " + seg;
    const regexes = this.#splitRegexes;
    if (regexes.length === 1) {
      // The common case (one Split or ByteLevel regex), fused: no intermediate piece array.
      const re = regexes[0];
      re.lastIndex = 0;
      let last = 0;
      let m: RegExpExecArray | null;
      while ((m = re.exec(seg)) !== null) {
        const len = m[0].length;
        if (len === 0) {
          re.lastIndex++;
          continue;
        }
        if (m.index > last) this.#encodePiece(seg.slice(last, m.index), ids);
        this.#encodePiece(m[0], ids);
        last = m.index + len;
      }
      if (last < seg.length) this.#encodePiece(seg.slice(last), ids);
      return;
    }
    let pieces = [seg];
    for (const re of regexes) {
      const next: string[] = [];
      for (const p of pieces) splitIsolated(p, re, next);
      pieces = next;
    }
    for (const p of pieces) this.#encodePiece(p, ids);
  }

  /** BPE one pre-token through the cache. */
  #encodePiece(p: string, ids: number[]): void {
    let word = this.#cache.get(p);
    if (word === undefined) {
      word = this.#bpeWord(p);
      if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
      this.#cache.set(p, word);
    }
    for (let i = 0; i < word.length; i++) ids.push(word[i]);
  }

  /** BPE on one pre-token: its UTF-8 bytes as byte tokens, then merges by lowest rank, leftmost first. */
  #bpeWord(piece: string): number[] {
    const bytes: number[] = [];
    utf8Bytes(piece, bytes);
    if (this.#ignoreMerges) {
      let s = "";
      for (const b of bytes) s += BYTE_TO_CHAR[b];
      const whole = this.#vocab.get(s);
      if (whole !== undefined) return [whole];
    }
    const sym: number[] = [];
    for (const b of bytes) if (this.#byteId[b] >= 0) sym.push(this.#byteId[b]); // missing byte, no unk: dropped
    return sym.length <= SMALL_WORD ? this.#mergeScan(sym) : this.#mergeHeap(sym);
  }

  #mergeScan(sym: number[]): number[] {
    const rankOf = this.#mergeRank;
    while (sym.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < sym.length; i++) {
        const r = rankOf.get(sym[i], sym[i + 1]);
        if (r >= 0 && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      sym[best] = this.#mergeNew[bestRank];
      sym.splice(best + 1, 1);
    }
    return sym;
  }

  /** Same result as #mergeScan in O(n log n): a heap of (rank, position) with lazy invalidation. */
  #mergeHeap(sym: number[]): number[] {
    const n = sym.length;
    const rankOf = this.#mergeRank;
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    const POS = 2 ** 26;
    if (n >= POS) throw new Error(`[tokenizer] pre-token of ${n} bytes is too long`);
    const heap = new MinHeap();
    const pushPair = (i: number) => {
      const j = next[i];
      if (j < 0) return;
      const r = rankOf.get(sym[i], sym[j]);
      if (r >= 0) heap.push(r * POS + i);
    };
    for (let i = 0; i + 1 < n; i++) pushPair(i);
    const alive = new Uint8Array(n).fill(1);
    while (heap.size > 0) {
      const top = heap.pop();
      const rank = Math.floor(top / POS);
      const i = top - rank * POS;
      const j = next[i];
      if (!alive[i] || j < 0 || rankOf.get(sym[i], sym[j]) !== rank) continue; // stale entry
      sym[i] = this.#mergeNew[rank];
      alive[j] = 0;
      next[i] = next[j];
      if (next[j] >= 0) prev[next[j]] = i;
      if (prev[i] >= 0) pushPair(prev[i]);
      pushPair(i);
    }
    const out: number[] = [];
    for (let i = 0; i >= 0; i = next[i]) out.push(sym[i]);
    return out;
  }
}

// Non-fatal (invalid sequences become U+FFFD, as from_utf8_lossy); ignoreBOM keeps a leading U+FEFF.
const UTF8 = new TextDecoder("utf-8", { ignoreBOM: true });

/** Open-addressing hash (a, b) -> rank over Int32Arrays: the merge lookup is the cold-cache hot spot. */
class PairTable {
  readonly #a: Int32Array;
  readonly #b: Int32Array;
  readonly #v: Int32Array;
  readonly #mask: number;
  constructor(n: number) {
    let cap = 16;
    while (cap < 2 * n) cap *= 2;
    this.#mask = cap - 1;
    this.#a = new Int32Array(cap).fill(-1);
    this.#b = new Int32Array(cap);
    this.#v = new Int32Array(cap);
  }
  #slot(a: number, b: number): number {
    return (Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca77)) & this.#mask;
  }
  set(a: number, b: number, v: number): void {
    let i = this.#slot(a, b);
    while (this.#a[i] !== -1 && (this.#a[i] !== a || this.#b[i] !== b)) i = (i + 1) & this.#mask;
    this.#a[i] = a;
    this.#b[i] = b;
    this.#v[i] = v;
  }
  /** The rank of (a, b), or -1. */
  get(a: number, b: number): number {
    let i = this.#slot(a, b);
    for (;;) {
      const x = this.#a[i];
      if (x === -1) return -1;
      if (x === a && this.#b[i] === b) return this.#v[i];
      i = (i + 1) & this.#mask;
    }
  }
}

class MinHeap {
  #a: number[] = [];
  get size(): number {
    return this.#a.length;
  }
  push(x: number): void {
    const a = this.#a;
    let i = a.length;
    a.push(x);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p] <= x) break;
      a[i] = a[p];
      i = p;
    }
    a[i] = x;
  }
  pop(): number {
    const a = this.#a;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= a.length) break;
        const c = l + 1 < a.length && a[l + 1] < a[l] ? l + 1 : l;
        if (a[c] >= last) break;
        a[i] = a[c];
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
}

/** "a b" -> ["a", "b"]; the old merges form splits on the first space (tokens never start with one). */
function splitMergeString(m: string): [string, string] {
  const k = m.indexOf(" ", 1);
  if (k < 0) throw new Error(`[tokenizer] merge ${JSON.stringify(m)} is not "a b"`);
  return [m.slice(0, k), m.slice(k + 1)];
}

function escapeRegex(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/-]/g, "\\$&");
}

/** One alternation over the added tokens, longest first (so the leftmost match is also the longest). */
function addedRegex(tokens: AddedToken[]): RegExp | null {
  if (tokens.length === 0) return null;
  const alts = [...tokens]
    .sort((a, b) => b.content.length - a.content.length)
    .map((t) => (t.lstrip ? String.raw`\p{White_Space}*` : "") + `(${escapeRegex(t.content)})` + (t.rstrip ? String.raw`\p{White_Space}*` : ""));
  return new RegExp(alts.join("|"), "gu");
}

/** Split `text` around added tokens: strings are ordinary text, numbers are added-token ids. */
function splitAdded(text: string, re: RegExp | null, byContent: Map<string, AddedToken>): (string | number)[] {
  if (re === null || text.length === 0) return text.length ? [text] : [];
  const out: (string | number)[] = [];
  re.lastIndex = 0;
  let last = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    const content = m.slice(1).find((g) => g !== undefined)!;
    if (m.index > last) out.push(text.slice(last, m.index));
    out.push(byContent.get(content)!.id);
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

function makeNormalizer(n: Json): ((s: string) => string) | null {
  if (n == null) return null;
  const forms: Record<string, string> = { NFC: "NFC", NFD: "NFD", NFKC: "NFKC", NFKD: "NFKD" };
  if (n.type in forms) return (s) => s.normalize(forms[n.type] as "NFC");
  if (n.type === "Sequence") {
    const fs = (n.normalizers as Json[]).map(makeNormalizer).filter((f): f is (s: string) => string => f !== null);
    return fs.length ? (s) => fs.reduce((acc, f) => f(acc), s) : null;
  }
  throw new UnsupportedTokenizerError(`normalizer ${n.type}`);
}

/** The regex splits and the prefix-space flag of a byte-level pre-tokenizer. */
function parsePreTokenizer(p: Json): { patterns: string[]; addPrefixSpace: boolean } {
  const steps: Json[] = p == null ? [] : p.type === "Sequence" ? p.pretokenizers : [p];
  const patterns: string[] = [];
  let byteLevel = false;
  let addPrefixSpace = false;
  for (const s of steps) {
    if (byteLevel) throw new UnsupportedTokenizerError(`pre-tokenizer ${s.type} after ByteLevel`);
    if (s.type === "Split") {
      if (s.behavior !== "Isolated" || s.invert)
        throw new UnsupportedTokenizerError(`Split behavior ${s.behavior}${s.invert ? " (inverted)" : ""}`);
      const pat = s.pattern?.Regex ?? (s.pattern?.String !== undefined ? escapeRegex(s.pattern.String) : undefined);
      if (pat === undefined) throw new UnsupportedTokenizerError(`Split pattern ${JSON.stringify(s.pattern)}`);
      patterns.push(pat);
    } else if (s.type === "ByteLevel") {
      byteLevel = true;
      addPrefixSpace = !!s.add_prefix_space;
      if (s.use_regex ?? true) patterns.push(GPT2_PATTERN);
    } else throw new UnsupportedTokenizerError(`pre-tokenizer ${s.type}`);
  }
  if (!byteLevel) throw new UnsupportedTokenizerError(`pre-tokenizer without ByteLevel`);
  if (addPrefixSpace && patterns.length > 1) throw new UnsupportedTokenizerError(`ByteLevel add_prefix_space after Split`);
  return { patterns, addPrefixSpace };
}

function checkDecoder(d: Json): void {
  const steps: Json[] = d == null ? [null] : d.type === "Sequence" ? d.decoders : [d];
  for (const s of steps) if (s?.type !== "ByteLevel") throw new UnsupportedTokenizerError(`decoder ${s?.type ?? "none"}`);
}

/** Ids added before/after the sequence when addSpecialTokens is on (TemplateProcessing, Roberta, Bert). */
function parsePostProcessor(p: Json): { prefix: number[]; suffix: number[] } {
  const steps: Json[] = p == null ? [] : p.type === "Sequence" ? p.processors : [p];
  const prefix: number[] = [];
  const suffix: number[] = [];
  for (const s of steps) {
    if (s.type === "ByteLevel") continue;
    if (s.type === "TemplateProcessing") {
      let seen = false;
      for (const piece of s.single as Json[]) {
        if (piece.Sequence) {
          if (piece.Sequence.id !== "A") throw new UnsupportedTokenizerError(`template sequence ${piece.Sequence.id}`);
          seen = true;
        } else if (piece.SpecialToken) {
          const ids: number[] = s.special_tokens?.[piece.SpecialToken.id]?.ids;
          if (!ids) throw new Error(`[tokenizer] template token ${piece.SpecialToken.id} has no ids`);
          (seen ? suffix : prefix).push(...ids);
        }
      }
    } else if (s.type === "RobertaProcessing" || s.type === "BertProcessing") {
      prefix.push(s.cls[1]);
      suffix.push(s.sep[1]);
    } else throw new UnsupportedTokenizerError(`post-processor ${s.type}`);
  }
  return { prefix, suffix };
}

/** tokenizer_config.json's eos_token/bos_token: a string, an AddedToken dict, or null. */
export function configTokenId(t: Json, tok: Pick<Tokenizer, "tokenToId">): number | undefined {
  const content = typeof t === "string" ? t : t?.content;
  return content == null ? undefined : tok.tokenToId(content);
}
