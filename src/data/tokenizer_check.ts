// Validation of a parsed tokenizer.json before either implementation (bpe.ts, or @huggingface/tokenizers
// through hf_tokenizer.ts) sees it: both trust the file, and a damaged one otherwise loads and encodes
// into garbage (a vocab id of 10^9 fed to the model, two tokens sharing an id decoding as the wrong
// text, an unknown model type read as byte-level BPE). Checks: ids unique, integer and in range; merges
// are pairs of vocabulary tokens whose concatenation is in the vocabulary (as the Rust crate requires);
// added-token and post-processor ids valid; every component type one that kiln or the reference library
// implements; no pre-tokenizer or normalizer regex with nested quantifiers (JavaScriptCore regexes
// cannot be interrupted, so a catastrophically backtracking pattern would hang encode, and is refused
// statically instead). Every error names the file and the field.
// Reference: tokenizers (Rust) src/models/bpe/model.rs (BadMerges, MergeTokenOutOfVocabulary).

/** A tokenizer.json that cannot be used as it is. The message names the file and the field. */
export class TokenizerFileError extends Error {}

// biome-ignore lint: tokenizer.json is loosely typed by nature
type Json = any;

/** Component types by field: those @huggingface/tokenizers builds (kiln's BPE does a subset of them). */
const KNOWN_TYPES: Record<string, readonly string[]> = {
  model: ["BPE", "WordPiece", "Unigram"],
  normalizer: ["BertNormalizer", "Precompiled", "Sequence", "Replace", "NFC", "NFD", "NFKC", "NFKD", "Strip", "StripAccents", "Lowercase", "Prepend"],
  pre_tokenizer: ["BertPreTokenizer", "Sequence", "Whitespace", "WhitespaceSplit", "Metaspace", "ByteLevel", "Split", "Punctuation", "Digits", "Replace", "FixedLength"],
  post_processor: ["TemplateProcessing", "ByteLevel", "BertProcessing", "RobertaProcessing", "Sequence"],
  decoder: ["ByteLevel", "WordPiece", "Metaspace", "BPEDecoder", "CTC", "Sequence", "Replace", "Fuse", "Strip", "ByteFallback"],
};
/** The array field of each component's "Sequence" type. */
const SEQUENCE_FIELD: Record<string, string> = {
  normalizer: "normalizers",
  pre_tokenizer: "pretokenizers",
  post_processor: "processors",
  decoder: "decoders",
};
const MAX_ID = 2 ** 31 - 1; // ids travel as i32 to the model

/**
 * Throws TokenizerFileError naming `file` and the field when `json` (a parsed tokenizer.json) is
 * damaged or uses a component no implementation here supports.
 */
export function validateTokenizerJSON(json: Json, file = "tokenizer.json"): void {
  const fail = (field: string, message: string): never => {
    throw new TokenizerFileError(`[tokenizer] ${file}: ${field}: ${message}`);
  };
  if (!isObject(json)) fail("(root)", `expected a JSON object, got ${kind(json)}`);
  const model = json.model;
  if (!isObject(model)) fail("model", `expected an object, got ${kind(model)}`);
  if (model.type !== undefined) checkType("model", model.type, fail);
  else if (model.vocab === undefined) fail("model", `has neither "type" nor "vocab"`);

  // Vocabulary: id -> token. Unigram lists [piece, score] pairs, ids by position; the others map token -> id.
  const byId = new Map<number, string>();
  const ids = new Map<string, number>();
  if (model.type !== undefined && model.type !== "Unigram" && Array.isArray(model.vocab))
    fail("model.vocab", `expected an object of token -> id for ${model.type}, got a list`);
  if (model.type === "Unigram" || Array.isArray(model.vocab)) {
    if (!Array.isArray(model.vocab)) fail("model.vocab", `expected a list of [piece, score] pairs, got ${kind(model.vocab)}`);
    model.vocab.forEach((entry: Json, i: number) => {
      if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== "string" || typeof entry[1] !== "number" || !Number.isFinite(entry[1]))
        fail(`model.vocab[${i}]`, `expected a [piece, score] pair, got ${show(entry)}`);
      if (ids.has(entry[0])) fail(`model.vocab[${i}]`, `piece ${show(entry[0])} is listed twice (ids ${ids.get(entry[0])} and ${i})`);
      ids.set(entry[0], i);
      byId.set(i, entry[0]);
    });
    const unk = model.unk_id;
    if (unk != null && !(Number.isInteger(unk) && unk >= 0 && unk < model.vocab.length))
      fail("model.unk_id", `${show(unk)} is not an id of the ${model.vocab.length} pieces`);
  } else {
    if (!isObject(model.vocab)) fail("model.vocab", `expected an object of token -> id, got ${kind(model.vocab)}`);
    for (const [token, id] of Object.entries(model.vocab as Record<string, unknown>)) {
      if (!isId(id)) fail("model.vocab", `token ${show(token)} has id ${show(id)}, not an integer in [0, ${MAX_ID}]`);
      const other = byId.get(id as number);
      if (other !== undefined) fail("model.vocab", `tokens ${show(other)} and ${show(token)} both have id ${id}`);
      byId.set(id as number, token);
      ids.set(token, id as number);
    }
    if (model.unk_token != null && !ids.has(model.unk_token)) fail("model.unk_token", `${show(model.unk_token)} is not in the vocab`);
  }

  // Added tokens: their own ids (usually after the vocabulary; an id shared with a vocab token overrides it).
  const added = json.added_tokens ?? [];
  if (!Array.isArray(added)) fail("added_tokens", `expected a list, got ${kind(added)}`);
  const addedById = new Map<number, string>();
  added.forEach((t: Json, i: number) => {
    const field = `added_tokens[${i}]`;
    if (!isObject(t)) fail(field, `expected an object, got ${kind(t)}`);
    if (typeof t.content !== "string" || t.content === "") fail(`${field}.content`, `expected a non-empty string, got ${show(t.content)}`);
    if (!isId(t.id)) fail(`${field}.id`, `${show(t.id)} (token ${show(t.content)}) is not an integer in [0, ${MAX_ID}]`);
    const other = addedById.get(t.id);
    if (other !== undefined && other !== t.content) fail(`${field}.id`, `added tokens ${show(other)} and ${show(t.content)} both have id ${t.id}`);
    addedById.set(t.id, t.content);
  });

  // Range: ids may leave a few holes (some files do) but not span far more ids than there are tokens.
  const all = new Set<number>([...byId.keys(), ...addedById.keys()]);
  const limit = 2 * all.size + 1024;
  for (const [id, token] of [...byId, ...addedById]) {
    if (id >= limit) {
      const where = addedById.get(id) === token ? "added_tokens" : "model.vocab";
      fail(where, `token ${show(token)} has id ${id}, far outside the ${all.size} ids the file defines (ids must lie below ${limit})`);
    }
  }

  if (model.type === "BPE" || (model.type === undefined && model.merges !== undefined)) checkMerges(model.merges ?? [], ids, fail);
  const known = (id: unknown) => isId(id) && all.has(id as number);
  for (const field of ["normalizer", "pre_tokenizer", "post_processor", "decoder"]) checkComponent(field, json[field], field, known, fail);
}

type Fail = (field: string, message: string) => never;

function checkType(field: string, type: unknown, fail: Fail): void {
  const kindName = field.replace(/\..*|\[.*/, "").replace(/^(\w+)s$/, "$1");
  const base = Object.keys(KNOWN_TYPES).find((k) => kindName.startsWith(k)) ?? kindName;
  const known = KNOWN_TYPES[base];
  if (typeof type !== "string" || !known.includes(type)) {
    const what = base === "model" ? "tokenizer model" : base.replace("_", "-");
    fail(`${field}.type`, `unknown ${what} type ${show(type)} (supported: ${known.join(", ")})`);
  }
}

function checkMerges(merges: unknown, ids: Map<string, number>, fail: Fail): void {
  if (!Array.isArray(merges)) fail("model.merges", `expected a list, got ${kind(merges)}`);
  (merges as unknown[]).forEach((m, rank) => {
    let pair: unknown[];
    if (typeof m === "string") {
      const k = m.indexOf(" ", 1);
      pair = k < 0 ? [m] : [m.slice(0, k), m.slice(k + 1)];
      if (pair.length !== 2 || (pair[1] as string).length === 0 || (pair[1] as string).includes(" "))
        fail(`model.merges[${rank}]`, `${show(m)} is not two tokens separated by one space`);
    } else if (Array.isArray(m) && m.length === 2 && m.every((x) => typeof x === "string")) pair = m;
    else return fail(`model.merges[${rank}]`, `${show(m)} is not a pair of tokens`);
    const [a, b] = pair as [string, string];
    for (const t of [a, b, a + b]) if (!ids.has(t)) fail(`model.merges[${rank}]`, `${show(m)}: ${show(t)} is not in the vocab`);
  });
}

function checkComponent(field: string, c: Json, base: string, known: (id: unknown) => boolean, fail: Fail): void {
  if (c == null) return;
  if (!isObject(c)) fail(field, `expected an object or null, got ${kind(c)}`);
  checkType(field, c.type, fail);
  if (c.type === "Sequence") {
    const list = c[SEQUENCE_FIELD[base]];
    if (!Array.isArray(list)) fail(`${field}.${SEQUENCE_FIELD[base]}`, `expected a list, got ${kind(list)}`);
    list.forEach((s: Json, i: number) => checkComponent(`${field}.${SEQUENCE_FIELD[base]}[${i}]`, s, base, known, fail));
    return;
  }
  if (c.type === "Split" || c.type === "Replace") {
    const p = c.pattern;
    if (!isObject(p) || (typeof p.Regex !== "string" && typeof p.String !== "string"))
      fail(`${field}.pattern`, `expected {"Regex": ...} or {"String": ...}, got ${show(p)}`);
    if (typeof p.Regex === "string") {
      const nested = nestedQuantifier(p.Regex);
      if (nested)
        fail(`${field}.pattern.Regex`, `${show(p.Regex)} has nested quantifiers ${show(nested)} (a quantified group repeated), which can backtrack for ever on some inputs; kiln refuses such patterns`);
    }
  }
  if (c.type === "TemplateProcessing") {
    const specials = c.special_tokens ?? {};
    if (!isObject(specials)) fail(`${field}.special_tokens`, `expected an object, got ${kind(specials)}`);
    for (const [name, s] of Object.entries(specials as Record<string, Json>)) {
      if (!isObject(s) || !Array.isArray(s.ids)) fail(`${field}.special_tokens.${name}`, `expected {"ids": [...]}, got ${show(s)}`);
      for (const id of s.ids) if (!known(id)) fail(`${field}.special_tokens.${name}.ids`, `${show(id)} is not an id of the vocab or added tokens`);
    }
    for (const part of ["single", "pair"]) {
      for (const piece of (c[part] ?? []) as Json[]) {
        const special = piece?.SpecialToken?.id;
        if (special !== undefined && !(special in specials)) fail(`${field}.${part}`, `special token ${show(special)} is not in special_tokens`);
      }
    }
  }
  if (c.type === "BertProcessing" || c.type === "RobertaProcessing") {
    for (const k of ["sep", "cls"]) {
      const v = c[k];
      if (!Array.isArray(v) || typeof v[0] !== "string" || !known(v[1])) fail(`${field}.${k}`, `${show(v)} is not a [token, id] pair of the vocab`);
    }
  }
}

/**
 * The first group that is repeated (*, +, {n,} or {n,m} with m > 1) while it holds an unbounded
 * quantifier, e.g. "(a+)+" or "(?:\s*x)*": the shape of exponential backtracking. Undefined if none.
 * Reads Oniguruma/JS syntax: escapes (with \p{..} and \x{..}), character classes, groups.
 */
export function nestedQuantifier(pattern: string): string | undefined {
  const open: { start: number; unbounded: boolean }[] = [{ start: 0, unbounded: false }];
  let i = 0;
  let lastAtom: { start: number; unbounded: boolean } | null = null; // what a quantifier here would repeat
  while (i < pattern.length) {
    const c = pattern[i];
    if (c === "\\") {
      const e = pattern[i + 1];
      const braced = (e === "p" || e === "P" || e === "x") && pattern[i + 2] === "{";
      const end = braced ? pattern.indexOf("}", i) + 1 || pattern.length : i + 2;
      lastAtom = { start: i, unbounded: false };
      i = end;
      continue;
    }
    if (c === "[") {
      let j = i + 1;
      if (pattern[j] === "^") j++;
      if (pattern[j] === "]") j++;
      for (let depth = 1; j < pattern.length && depth > 0; j++) {
        if (pattern[j] === "\\") j++;
        else if (pattern[j] === "[") depth++;
        else if (pattern[j] === "]") depth--;
      }
      lastAtom = { start: i, unbounded: false };
      i = j;
      continue;
    }
    if (c === "(") {
      open.push({ start: i, unbounded: false });
      lastAtom = null;
      i++;
      if (pattern[i] === "?") {
        while (i < pattern.length && /[?:=!<A-Za-z-]/.test(pattern[i]) && pattern[i] !== ")") {
          const stop = pattern[i] === ":" || pattern[i] === "=" || pattern[i] === "!";
          i++;
          if (stop) break;
        }
      }
      continue;
    }
    if (c === ")") {
      const g = open.length > 1 ? open.pop()! : { start: 0, unbounded: false };
      if (g.unbounded) open[open.length - 1].unbounded = true;
      lastAtom = g;
      i++;
      continue;
    }
    const q = quantifierAt(pattern, i);
    if (q) {
      if (lastAtom) {
        if (q.repeats && lastAtom.unbounded) return pattern.slice(lastAtom.start, i + q.length);
        if (q.unbounded) open[open.length - 1].unbounded = true;
      }
      lastAtom = null;
      i += q.length;
      if (pattern[i] === "?" || pattern[i] === "+") i++; // lazy / possessive suffix
      continue;
    }
    lastAtom = c === "|" ? null : { start: i, unbounded: false };
    i++;
  }
  return undefined;
}

/** A quantifier at pattern[i]: its length, whether it can repeat (max > 1) and whether it is unbounded. */
function quantifierAt(pattern: string, i: number): { length: number; repeats: boolean; unbounded: boolean } | null {
  const c = pattern[i];
  if (c === "*" || c === "+") return { length: 1, repeats: true, unbounded: true };
  if (c === "?") return { length: 1, repeats: false, unbounded: false };
  if (c !== "{") return null;
  const m = /^\{(\d*)(,(\d*))?\}/.exec(pattern.slice(i));
  if (!m || (m[1] === "" && m[3] === undefined)) return null;
  const max = m[2] === undefined ? Number(m[1]) : m[3] === "" ? Infinity : Number(m[3]);
  return { length: m[0].length, repeats: max > 1, unbounded: max === Infinity };
}

function isObject(x: unknown): x is Record<string, Json> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function isId(x: unknown): boolean {
  return typeof x === "number" && Number.isInteger(x) && x >= 0 && x <= MAX_ID;
}

function kind(x: unknown): string {
  return x === null ? "null" : Array.isArray(x) ? "a list" : typeof x === "object" ? "an object" : `${typeof x} ${show(x)}`;
}

function show(x: unknown): string {
  const s = JSON.stringify(x) ?? String(x);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
