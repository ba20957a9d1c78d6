// Byte-level pre-tokenization: the GPT-2 byte<->unicode alphabet, UTF-8 helpers, and a translator from
// the Oniguruma regexes in tokenizer.json (written for the Rust `tokenizers` crate) to JavaScript `u` regexes.
// Not a general Oniguruma engine: constructs it cannot translate exactly throw, and the caller falls back.
// Reference: openai/gpt-2 encoder.py bytes_to_unicode; tokenizers/src/pre_tokenizers/byte_level.rs.

/** GPT-2's pre-tokenizer regex (ByteLevel with use_regex: true). */
export const GPT2_PATTERN = String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;
/** Llama 3's Split regex (digits in groups of up to three). */
export const LLAMA3_PATTERN = String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
/** Qwen2's Split regex (single digits). */
export const QWEN2_PATTERN = String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;

/** byte -> printable char, as GPT-2's bytes_to_unicode: printable Latin-1 stays, the rest go to U+0100.. */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const table: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table[b] = String.fromCharCode(printable ? b : 256 + n++);
  }
  return table;
})();

/** char code -> byte for the 256 byte-level chars; -1 elsewhere (all codes are < 0x144). */
export const CHAR_TO_BYTE: Int16Array = (() => {
  const t = new Int16Array(0x144).fill(-1);
  BYTE_TO_CHAR.forEach((c, b) => (t[c.charCodeAt(0)] = b));
  return t;
})();

/**
 * Append the UTF-8 bytes of `s` to `out` (lone surrogates become U+FFFD, like TextEncoder).
 * Hand-rolled because TextEncoder per short piece dominates the encode time.
 */
export function utf8Bytes(s: string, out: number[]): void {
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      out.push(c);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      } else c = 0xfffd;
    }
    if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
}

/** The byte-level string of `s`: its UTF-8 bytes, each mapped through BYTE_TO_CHAR. */
export function toByteLevel(s: string): string {
  const bytes: number[] = [];
  utf8Bytes(s, bytes);
  let r = "";
  for (const b of bytes) r += BYTE_TO_CHAR[b];
  return r;
}

// Oniguruma (Unicode) classes, spelled in JS `u` syntax. \s is White_Space (includes U+0085, not U+FEFF),
// \d is Nd, \w is letters, marks, decimal digits and connector punctuation.
const CLASS_BODY: Record<string, string> = {
  s: String.raw`\p{White_Space}`,
  d: String.raw`\p{Nd}`,
  w: String.raw`\p{L}\p{M}\p{Nd}\p{Pc}`,
};
const NEGATED: Record<string, string> = { S: String.raw`\P{White_Space}`, D: String.raw`\P{Nd}` };
// ASCII letters whose Unicode case folding adds a non-ASCII member (ſ folds to s, K (Kelvin) to k).
const FOLD_EXTRA: Record<string, string> = { s: "\u017f", k: "\u212a" };
const JS_SYNTAX = new Set("^$\\.*+?()[]{}|/-".split(""));

/**
 * Translate an Oniguruma pattern from tokenizer.json into JS `u` regex source. Handles \s \S \d \D \w,
 * \p{..}, \x{..}, `.`, (?: (?= (?! (?<= (?<!, and (?i:...) groups over plain ASCII text.
 * Throws `[pretokenize] ...` for anything else (the caller then uses the reference library instead).
 */
export function translateOnigurumaPattern(pattern: string): string {
  let out = "";
  let inClass = false;
  const groups: boolean[] = []; // per open group: case-insensitive?
  let ci = 0; // depth of enclosing (?i: groups
  const fail = (what: string): never => {
    throw new Error(`[pretokenize] regex construct ${what} is not supported in ${JSON.stringify(pattern)}`);
  };
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") {
      const e = pattern[++i];
      if (e === undefined) fail("trailing backslash");
      if (e === "p" || e === "P") {
        const close = pattern.indexOf("}", i);
        if (pattern[i + 1] !== "{" || close < 0) fail(`\\${e} without {...}`);
        out += pattern.slice(i - 1, close + 1);
        i = close;
      } else if (e === "x" && pattern[i + 1] === "{") {
        const close = pattern.indexOf("}", i);
        out += String.raw`\u{` + pattern.slice(i + 2, close) + "}";
        i = close;
      } else if (e in CLASS_BODY) {
        out += inClass ? CLASS_BODY[e] : `[${CLASS_BODY[e]}]`;
      } else if (e in NEGATED) {
        out += NEGATED[e];
      } else if ("rntfv0".includes(e) || (e === "x" && /^[0-9a-fA-F]{2}$/.test(pattern.slice(i + 1, i + 3)))) {
        out += "\\" + e;
      } else if (e === "u" && /^[0-9a-fA-F]{4}$/.test(pattern.slice(i + 1, i + 5))) {
        out += "\\" + e;
      } else if (/[A-Za-z0-9]/.test(e)) {
        fail(`\\${e}`);
      } else {
        out += JS_SYNTAX.has(e) ? "\\" + e : e; // identity escape of punctuation
      }
      continue;
    }
    if (inClass) {
      if (c === "[") fail("nested character class");
      if (c === "]") inClass = false;
      if (ci > 0 && /[A-Za-z]/.test(c)) fail("letters in a class inside (?i:...)");
      out += c;
      continue;
    }
    if (c === "[") {
      inClass = true;
      out += c;
      if (pattern[i + 1] === "^") out += pattern[++i];
      if (pattern[i + 1] === "]") fail("leading ] in a class");
      continue;
    }
    if (c === "(") {
      if (pattern[i + 1] !== "?") {
        groups.push(false);
        out += "(";
        continue;
      }
      const rest = pattern.slice(i + 2);
      const m = /^(:|=|!|<=|<!|i:)/.exec(rest);
      if (!m) fail(`(?${rest.slice(0, 3)}`);
      const isCi = m![1] === "i:";
      groups.push(isCi);
      if (isCi) ci++;
      out += isCi ? "(?:" : "(?" + m![1];
      i += 1 + m![1].length;
      continue;
    }
    if (c === ")") {
      if (groups.pop()) ci--;
      out += ")";
      continue;
    }
    if ((c === "+" || c === "*" || c === "?" || c === "}") && pattern[i + 1] === "+") fail("possessive quantifier");
    if (c === "^" || c === "$") fail(c);
    if (c === ".") {
      out += String.raw`[^\n]`;
      continue;
    }
    if (ci > 0 && /[A-Za-z]/.test(c)) {
      const lo = c.toLowerCase();
      out += `[${lo}${c.toUpperCase()}${FOLD_EXTRA[lo] ?? ""}]`;
      continue;
    }
    out += c;
  }
  if (inClass || groups.length) fail("unbalanced brackets");
  new RegExp(out, "gu"); // throws SyntaxError on anything JS cannot compile
  return out;
}

/**
 * Split `text` like tokenizers' Split pre-tokenizer with behavior "Isolated": every match is a piece and
 * so is every non-empty gap between matches. `re` must be global ("gu").
 */
export function splitIsolated(text: string, re: RegExp, out: string[]): void {
  re.lastIndex = 0;
  let last = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    const s = m.index;
    const e = s + m[0].length;
    if (e === s) {
      re.lastIndex++; // empty match: step over (none of the supported patterns match empty)
      continue;
    }
    if (s > last) out.push(text.slice(last, s));
    out.push(m[0]);
    last = e;
  }
  if (last < text.length) out.push(text.slice(last));
}
