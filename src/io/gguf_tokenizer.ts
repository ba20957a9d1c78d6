// A Hugging Face byte-level BPE tokenizer (tokenizer.json + tokenizer_config.json) as llama.cpp's
// tokenizer.ggml.* metadata, and back: tokens (padded to the model's vocab_size), token types,
// merges, the pre-tokenizer's name (llama.cpp picks its split regex by it), special ids, add_bos
// and the chat template. Only what llama.cpp tokenizes the same way is written: byte-level BPE
// with the GPT-2, Llama-3 or Qwen2 split; other tokenizers (SentencePiece, WordPiece, an unknown
// regex) are refused, naming the part llama.cpp would tokenize differently.
// Reference: llama.cpp convert_hf_to_gguf.py (get_vocab_base, get_vocab_base_pre, _set_vocab_gpt2),
// gguf-py/gguf/vocab.py (SpecialVocab), src/llama-vocab.cpp (token types, pre-tokenizer names).

import { gguf, type GGUFValue } from "./gguf.ts";

/** llama.cpp's token types (llama_token_type). */
const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** The split regexes of the pre-tokenizers llama.cpp knows by name (as tokenizer.json writes them). */
export const PRE_TOKENIZER_REGEX = {
  "llama-bpe": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  qwen2: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
} as const;

interface AddedToken { id: number; content: string; special?: boolean; normalized?: boolean }

/** Token ids a model config names (bos/eos may be arrays in HF configs: the first is used). */
export interface SpecialIds { bos: number | null; eos: number | null; pad?: number | null }

/**
 * The tokenizer.ggml.* and tokenizer.chat_template entries for a tokenizer.json (parsed) and its
 * tokenizer_config.json, for a model of `vocabSize` rows. Throws `[gguf] tokenizer: ...` for a
 * tokenizer llama.cpp cannot run as written.
 */
export function tokenizerMetadata(json: any, config: Record<string, any>, vocabSize: number, ids: SpecialIds): Map<string, GGUFValue> {
  const model = json?.model;
  if (model?.type !== "BPE") throw new Error(`[gguf] tokenizer: model type ${JSON.stringify(model?.type)} is not supported (kiln writes BPE tokenizers)`);
  const spm = model.byte_fallback === true;
  const pre = spm ? sentencePieceCheck(json) : preTokenizerName(json.pre_tokenizer);
  const byId: (string | undefined)[] = new Array(vocabSize);
  for (const [token, id] of Object.entries(model.vocab as Record<string, number>)) {
    if (id >= vocabSize) throw new Error(`[gguf] tokenizer: token ${JSON.stringify(token)} has id ${id}, past the model's vocab_size ${vocabSize}`);
    byId[id] = token;
  }
  const added = new Map<number, AddedToken>();
  for (const t of (json.added_tokens ?? []) as AddedToken[]) {
    if (t.id >= vocabSize) throw new Error(`[gguf] tokenizer: added token ${JSON.stringify(t.content)} has id ${t.id}, past the model's vocab_size ${vocabSize}`);
    byId[t.id] = t.content;
    added.set(t.id, t);
  }
  const tokens: string[] = [];
  const types: number[] = [];
  for (let i = 0; i < vocabSize; i++) {
    const t = byId[i];
    const a = added.get(i);
    if (t === undefined) {
      tokens.push(`[PAD${i}]`); // the converter's filler for ids the tokenizer does not use
      types.push(TOKEN_TYPE.USER_DEFINED);
    } else if (spm && /^<0x[0-9A-Fa-f]{2}>$/.test(t)) {
      tokens.push(t);
      types.push(TOKEN_TYPE.BYTE);
    } else if (spm && t === model.unk_token) {
      tokens.push(t);
      types.push(TOKEN_TYPE.UNKNOWN);
    } else if (a) {
      tokens.push(t);
      types.push(a.special || looksSpecial(t) ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.USER_DEFINED);
    } else {
      tokens.push(t);
      types.push(TOKEN_TYPE.NORMAL);
    }
  }
  const merges: string[] = (model.merges ?? []).map((m: string | [string, string]) => (Array.isArray(m) ? m.join(" ") : m));
  const out = new Map<string, GGUFValue>([
    ["tokenizer.ggml.model", gguf.str(spm ? "llama" : "gpt2")],
    ["tokenizer.ggml.pre", gguf.str(pre)],
    ["tokenizer.ggml.tokens", gguf.arr("str", tokens)],
  ]);
  if (spm) {
    // llama.cpp's SentencePiece tokenizer merges the adjacent pair whose joined piece scores highest:
    // a piece scores minus the rank of the BPE merge that makes it, so it merges in BPE's order (the
    // scores sentencepiece gives Llama's pieces are, likewise, minus their order)
    const rank = new Map<string, number>();
    merges.forEach((m, r) => {
      const piece = m.replace(" ", "");
      if (!rank.has(piece)) rank.set(piece, r);
    });
    out.set("tokenizer.ggml.scores", gguf.arr("f32", tokens.map((t) => -(rank.get(t) ?? 0))));
    out.set("tokenizer.ggml.token_type", gguf.arr("i32", types));
    out.set("tokenizer.ggml.add_space_prefix", gguf.bool(true));
  } else {
    out.set("tokenizer.ggml.token_type", gguf.arr("i32", types));
    out.set("tokenizer.ggml.merges", gguf.arr("str", merges));
  }
  const idOf = (token: unknown): number | null => {
    const content = typeof token === "string" ? token : (token as { content?: string } | null)?.content;
    if (content === undefined) return null;
    const i = tokens.indexOf(content);
    return i >= 0 ? i : null;
  };
  const bos = idOf(config.bos_token) ?? ids.bos;
  const eos = idOf(config.eos_token) ?? ids.eos;
  const pad = idOf(config.pad_token) ?? ids.pad ?? null;
  const unk = idOf(config.unk_token);
  if (bos !== null) out.set("tokenizer.ggml.bos_token_id", gguf.u32(bos));
  if (eos !== null) out.set("tokenizer.ggml.eos_token_id", gguf.u32(eos));
  if (unk !== null) out.set("tokenizer.ggml.unknown_token_id", gguf.u32(unk));
  if (pad !== null) out.set("tokenizer.ggml.padding_token_id", gguf.u32(pad));
  // HF's byte-level BPE tokenizers add no BOS unless the config or the post-processor says so
  out.set("tokenizer.ggml.add_bos_token", gguf.bool(config.add_bos_token === true || postProcessorAddsBos(json.post_processor, bos, tokens)));
  if (config.add_eos_token === true) out.set("tokenizer.ggml.add_eos_token", gguf.bool(true));
  const template = chatTemplate(config.chat_template);
  if (template !== undefined) out.set("tokenizer.chat_template", gguf.str(template));
  return out;
}

/** The tokenizer.json and tokenizer_config.json that a GGUF's tokenizer.ggml.* entries describe. */
export function tokenizerFromMetadata(get: (key: string) => unknown, file: string): { json: any; config: Record<string, unknown> } {
  const model = get("tokenizer.ggml.model");
  if (model !== "gpt2" && model !== "llama") throw new Error(`[gguf] ${file}: tokenizer.ggml.model ${JSON.stringify(model)} is not supported (kiln reads "gpt2" and "llama"; load with { tokenizer: false } for the weights alone)`);
  const tokens = get("tokenizer.ggml.tokens") as string[] | undefined;
  if (!Array.isArray(tokens)) throw new Error(`[gguf] ${file}: tokenizer.ggml.tokens is missing`);
  if (model === "llama") return sentencePieceFromMetadata(get, tokens, file);
  const types = (get("tokenizer.ggml.token_type") as number[] | undefined) ?? [];
  const merges = (get("tokenizer.ggml.merges") as string[] | undefined) ?? [];
  const pre = (get("tokenizer.ggml.pre") as string | undefined) ?? "default";
  const vocab: Record<string, number> = {};
  const addedTokens: object[] = [];
  tokens.forEach((t, id) => {
    const type = types[id] ?? TOKEN_TYPE.NORMAL;
    if (type === TOKEN_TYPE.CONTROL || type === TOKEN_TYPE.USER_DEFINED) {
      if (/^\[PAD\d+\]$/.test(t)) return; // fillers for unused ids
      addedTokens.push({ id, content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: type === TOKEN_TYPE.CONTROL });
    } else vocab[t] = id;
  });
  const byteLevel = (useRegex: boolean) => ({ type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: useRegex });
  const regex = PRE_TOKENIZER_REGEX[pre as keyof typeof PRE_TOKENIZER_REGEX];
  if (!regex && pre !== "gpt-2" && pre !== "default") throw new Error(`[gguf] ${file}: tokenizer.ggml.pre ${JSON.stringify(pre)} is not supported (gpt-2, llama-bpe, qwen2)`);
  const preTokenizer = regex
    ? { type: "Sequence", pretokenizers: [{ type: "Split", pattern: { Regex: regex }, behavior: "Isolated", invert: false }, byteLevel(false)] }
    : byteLevel(true);
  const json = {
    version: "1.0", truncation: null, padding: null, added_tokens: addedTokens,
    normalizer: pre === "qwen2" ? { type: "NFC" } : null, pre_tokenizer: preTokenizer, post_processor: byteLevel(true), decoder: byteLevel(true),
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges },
  };
  const tokenAt = (key: string) => {
    const id = get(key);
    return typeof id === "number" && id < tokens.length ? tokens[id] : undefined;
  };
  const config: Record<string, unknown> = { tokenizer_class: "PreTrainedTokenizerFast", bos_token: tokenAt("tokenizer.ggml.bos_token_id"), eos_token: tokenAt("tokenizer.ggml.eos_token_id") };
  if (tokenAt("tokenizer.ggml.padding_token_id")) config.pad_token = tokenAt("tokenizer.ggml.padding_token_id");
  if (get("tokenizer.ggml.add_bos_token") === true) config.add_bos_token = true;
  const template = get("tokenizer.chat_template");
  if (typeof template === "string") config.chat_template = template;
  return { json, config };
}

/**
 * A byte-fallback BPE must be SentencePiece's (Llama 2, Mistral v0.1): spaces as "▁" with one
 * prepended (a Prepend + Replace normalizer, or a Metaspace pre-tokenizer), which llama.cpp's "llama"
 * tokenizer does itself. Returns the pre-tokenizer name ("default").
 */
function sentencePieceCheck(json: any): string {
  const norms = json.normalizer?.type === "Sequence" ? json.normalizer.normalizers : json.normalizer ? [json.normalizer] : [];
  const prepends = norms.some((n: any) => n?.type === "Prepend" && n.prepend === "\u2581");
  const replaces = norms.some((n: any) => n?.type === "Replace" && n.pattern?.String === " " && n.content === "\u2581");
  const metaspace = json.pre_tokenizer?.type === "Metaspace";
  if (!((prepends && replaces && !json.pre_tokenizer) || metaspace)) {
    throw new Error("[gguf] tokenizer: a BPE with byte_fallback must be SentencePiece-style (spaces as \u2581, one prepended) for llama.cpp's llama tokenizer");
  }
  return "default";
}

/**
 * A llama.cpp "llama" (SentencePiece) vocabulary as a byte-fallback BPE tokenizer.json, as
 * transformers' LlamaConverter builds one from a sentencepiece model: merges are every split of a
 * piece into two pieces, pieces in order of score (highest first), splits by the ids of their halves.
 */
function sentencePieceFromMetadata(get: (key: string) => unknown, tokens: string[], file: string): { json: any; config: Record<string, unknown> } {
  const types = (get("tokenizer.ggml.token_type") as number[] | undefined) ?? [];
  const scores = get("tokenizer.ggml.scores") as number[] | undefined;
  if (!Array.isArray(scores) || scores.length !== tokens.length) throw new Error(`[gguf] ${file}: tokenizer.ggml.scores must have one score per token`);
  const vocab: Record<string, number> = {};
  const addedTokens: object[] = [];
  tokens.forEach((t, id) => {
    vocab[t] = id;
    const type = types[id] ?? TOKEN_TYPE.NORMAL;
    if (type === TOKEN_TYPE.CONTROL || type === TOKEN_TYPE.UNKNOWN || type === TOKEN_TYPE.USER_DEFINED) {
      addedTokens.push({ id, content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: type !== TOKEN_TYPE.USER_DEFINED });
    }
  });
  const candidates: { score: number; id: number; l: number; r: number; merge: string }[] = [];
  tokens.forEach((t, id) => {
    if ((types[id] ?? TOKEN_TYPE.NORMAL) !== TOKEN_TYPE.NORMAL) return;
    const chars = [...t];
    for (let i = 1; i < chars.length; i++) {
      const l = chars.slice(0, i).join(""), r = chars.slice(i).join("");
      const li = vocab[l], ri = vocab[r];
      if (li !== undefined && ri !== undefined) candidates.push({ score: scores[id], id, l: li, r: ri, merge: `${l} ${r}` });
    }
  });
  candidates.sort((a, b) => b.score - a.score || a.id - b.id || a.l - b.l || a.r - b.r);
  const unkId = types.findIndex((t) => t === TOKEN_TYPE.UNKNOWN);
  const bosId = get("tokenizer.ggml.bos_token_id");
  const bos = typeof bosId === "number" ? tokens[bosId] : undefined;
  const addBos = get("tokenizer.ggml.add_bos_token") !== false && bos !== undefined;
  const json = {
    version: "1.0", truncation: null, padding: null, added_tokens: addedTokens,
    normalizer: { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "\u2581" }, { type: "Replace", pattern: { String: " " }, content: "\u2581" }] },
    pre_tokenizer: null,
    post_processor: addBos
      ? { type: "TemplateProcessing", single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
        pair: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: bos, type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } }],
        special_tokens: { [bos]: { id: bos, ids: [bosId], tokens: [bos] } } }
      : null,
    decoder: { type: "Sequence", decoders: [{ type: "Replace", pattern: { String: "\u2581" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }, { type: "Strip", content: " ", start: 1, stop: 0 }] },
    model: {
      type: "BPE", dropout: null, unk_token: unkId >= 0 ? tokens[unkId] : null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: true, vocab, merges: candidates.map((c) => c.merge),
    },
  };
  const tokenAt = (key: string) => {
    const id = get(key);
    return typeof id === "number" && id < tokens.length ? tokens[id] : undefined;
  };
  const config: Record<string, unknown> = {
    tokenizer_class: "LlamaTokenizerFast", bos_token: bos, eos_token: tokenAt("tokenizer.ggml.eos_token_id"), unk_token: unkId >= 0 ? tokens[unkId] : undefined,
    add_bos_token: addBos, add_eos_token: get("tokenizer.ggml.add_eos_token") === true,
  };
  const template = get("tokenizer.chat_template");
  if (typeof template === "string") config.chat_template = template;
  return { json, config };
}

/** llama.cpp's name for a tokenizer.json pre_tokenizer, or a throw naming what differs. */
function preTokenizerName(p: any): string {
  if (p?.type === "ByteLevel" && p.use_regex !== false) {
    if (p.add_prefix_space) throw new Error("[gguf] tokenizer: ByteLevel add_prefix_space is not supported by llama.cpp's gpt-2 pre-tokenizer");
    return "gpt-2";
  }
  if (p?.type === "Sequence" && Array.isArray(p.pretokenizers)) {
    const [split, byteLevel, ...rest] = p.pretokenizers;
    const regex = split?.type === "Split" ? split.pattern?.Regex : undefined;
    if (rest.length === 0 && byteLevel?.type === "ByteLevel" && byteLevel.use_regex === false) {
      for (const [name, r] of Object.entries(PRE_TOKENIZER_REGEX)) if (r === regex) return name;
    }
  }
  throw new Error(`[gguf] tokenizer: pre_tokenizer ${JSON.stringify(p)?.slice(0, 200)} is not one llama.cpp knows by name (GPT-2 ByteLevel, Llama-3 or Qwen2 split)`);
}

/** A TemplateProcessing post-processor that starts every sequence with the BOS token. */
function postProcessorAddsBos(p: any, bos: number | null, tokens: string[]): boolean {
  if (bos === null) return false;
  const procs = p?.type === "Sequence" ? p.processors ?? [] : [p];
  return procs.some((q: any) => q?.type === "TemplateProcessing" && q.single?.[0]?.SpecialToken?.id === tokens[bos]);
}

/** tokenizer_config.json's chat_template: a string, or a list of named templates (the "default" one). */
function chatTemplate(t: unknown): string | undefined {
  if (typeof t === "string") return t;
  if (Array.isArray(t)) return (t.find((x) => x?.name === "default") ?? t[0])?.template;
  return undefined;
}

/** The converter's does_token_look_special: <|...|>, <...> control-looking added tokens. */
function looksSpecial(t: string): boolean {
  return (t.startsWith("<|") && t.endsWith("|>")) || t === "<s>" || t === "</s>" || t === "<pad>" || t === "<unk>" || t === "<mask>";
}
