// `kiln tokenizer train` writes a folder that loadTokenizer reads; bad flags return 2.
import { expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../src/cli/tokenizer.ts";
import { loadTokenizer } from "../../src/data/tokenizer.ts";

test("kiln tokenizer train --files a b --vocab-size N --out dir", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kiln-cli-tok-"));
  const { log, error } = console;
  console.log = () => {};
  try {
    await Bun.write(join(dir, "a.txt"), "hello hello world\n".repeat(30));
    await Bun.write(join(dir, "b.txt"), "world of words\n".repeat(30));
    const out = join(dir, "tok");
    expect(await main(["train", "--files", join(dir, "a.txt"), join(dir, "b.txt"), "--vocab-size", "270", "--out", out, "--special", "<eos>"])).toBe(0);
    const tok = await loadTokenizer(out);
    expect(tok.vocabSize).toBe(270);
    expect(tok.eosTokenId).toBe(0);
    expect(tok.encode(" hello")).toHaveLength(1);
    expect(tok.decode(tok.encode("words of hello<eos>"))).toBe("words of hello<eos>");
    console.error = () => {};
    expect(await main(["train", "--vocab-size", "270"])).toBe(2);
    expect(await main(["train", "--files", "x", "--vocab-size", "abc", "--out", out])).toBe(2);
    expect(await main(["frobnicate"])).toBe(2);
  } finally {
    console.log = log;
    console.error = error;
    await rm(dir, { recursive: true });
  }
});
