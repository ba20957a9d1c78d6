// Byte-level alphabet, UTF-8 helper and the Oniguruma -> JS regex translation used by the BPE tokenizer.
import { describe, expect, test } from "bun:test";
import { BYTE_TO_CHAR, CHAR_TO_BYTE, GPT2_PATTERN, LLAMA3_PATTERN, splitIsolated, translateOnigurumaPattern, utf8Bytes } from "../../src/data/pretokenize.ts";

const split = (pattern: string, text: string) => {
  const out: string[] = [];
  splitIsolated(text, new RegExp(translateOnigurumaPattern(pattern), "gu"), out);
  return out;
};

describe("pretokenize", () => {
  test("byte alphabet is a bijection onto 256 printable chars (GPT-2 bytes_to_unicode)", () => {
    expect(new Set(BYTE_TO_CHAR).size).toBe(256);
    expect(BYTE_TO_CHAR[32]).toBe("Ġ");
    expect(BYTE_TO_CHAR[10]).toBe("Ċ");
    expect(BYTE_TO_CHAR[65]).toBe("A");
    BYTE_TO_CHAR.forEach((c, b) => expect(CHAR_TO_BYTE[c.charCodeAt(0)]).toBe(b));
  });

  test("utf8Bytes equals TextEncoder, lone surrogates included", () => {
    for (const s of ["abc", "é漢🙂", "\ud800x", "x\udc00", "\u{10ffff}"]) {
      const out: number[] = [];
      utf8Bytes(s, out);
      expect(out).toEqual([...new TextEncoder().encode(s)]);
    }
  });

  test("GPT-2 split: contractions, letters, digits, whitespace runs", () => {
    expect(split(GPT2_PATTERN, "I'll pay 42  dollars!\n\n")).toEqual(["I", "'ll", " pay", " 42", " ", " dollars", "!", "\n\n"]);
  });

  test("Llama 3 split: case-insensitive contractions (ſ folds to s), digits in threes", () => {
    expect(split(LLAMA3_PATTERN, "IT'S 1234567")).toEqual(["IT", "'S", " ", "123", "456", "7"]);
    expect(split(LLAMA3_PATTERN, "a'ſ")).toEqual(["a", "'ſ"]);
  });

  test("\\s is Unicode White_Space as in Oniguruma: U+0085 yes, U+FEFF no", () => {
    const re = new RegExp(translateOnigurumaPattern(String.raw`\s+`), "u");
    expect(re.test("\u0085")).toBe(true);
    expect(re.test("\ufeff")).toBe(false);
  });

  test("untranslatable constructs throw naming them", () => {
    expect(() => translateOnigurumaPattern(String.raw`\Ga`)).toThrow(/\\G/);
    expect(() => translateOnigurumaPattern("a++")).toThrow(/possessive/);
    expect(() => translateOnigurumaPattern("(?i:[a-z])")).toThrow(/inside \(\?i/);
    expect(() => translateOnigurumaPattern("(?>a)")).toThrow(/\(\?>a/);
  });
});
