import { describe, expect, test } from "bun:test";
import { CharTokenizer } from "../../src/data/tokenizer.ts";

describe("CharTokenizer", () => {
  test("vocab is the sorted unique characters", () => {
    const t = CharTokenizer.fromText("hello world\n");
    expect(t.chars).toEqual(["\n", " ", "d", "e", "h", "l", "o", "r", "w"]);
    expect(t.vocabSize).toBe(9);
    expect(t.tokenToId("h")).toBe(4);
    expect(t.idToToken(0)).toBe("\n");
  });

  test("encode/decode round trip, astral code points kept whole", () => {
    const text = "First Citizen:\nBefore we proceed 🙂 é 漢字";
    const t = CharTokenizer.fromText(text);
    const ids = t.encode(text);
    expect(ids.length).toBe([...text].length);
    expect(t.decode(ids)).toBe(text);
  });

  test("toJSON/fromJSON round trip", () => {
    const t = CharTokenizer.fromText("abcabc xyz");
    const u = CharTokenizer.fromJSON(JSON.stringify(t));
    expect(u.chars).toEqual(t.chars);
    expect(u.encode("zyx cba")).toEqual(t.encode("zyx cba"));
  });

  test("unknown character throws naming it", () => {
    const t = CharTokenizer.fromText("ab");
    expect(() => t.encode("abc")).toThrow(/"c"/);
    expect(() => t.decode([5])).toThrow(/out of range/);
  });
});
