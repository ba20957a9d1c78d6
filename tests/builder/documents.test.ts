import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DocumentLoader, formatReport } from "../../src/builder/documents.ts";
import { cleanText, removeBoilerplate } from "../../src/builder/clean.ts";
import { dedupe, lshBands } from "../../src/builder/dedupe.ts";
import { htmlToText, parseCsv } from "../../src/builder/extract.ts";

function raw(): string {
  const dir = mkdtempSync(join(tmpdir(), "kiln-docs-"));
  mkdirSync(join(dir, "sub/deeper"), { recursive: true });
  writeFileSync(join(dir, "a.txt"), "Cafe\u0301 opens\t\tat   nine.\r\n\r\n\r\n\r\nBring\u0007 a mug.\n");
  writeFileSync(join(dir, "sub/b.md"), "# Notes\n\nThe river runs north past the mill and the old stone bridge.\n");
  writeFileSync(join(dir, "sub/deeper/c.html"), "<html><head><title>Page</title><style>body{color:red}</style><script>var x = 1;</script></head><body><p>Fish &amp; chips</p><div>cost&nbsp;&#163;5</div><noscript>enable js</noscript></body></html>");
  writeFileSync(join(dir, "d.jsonl"), '{"text": "first record"}\n{"body": "no text field"}\n{"text": "second record"}\n');
  writeFileSync(join(dir, "e.json"), JSON.stringify([{ content: "json content" }]));
  writeFileSync(join(dir, "f.csv"), 'id,text\n1,"a, quoted ""cell""\nwith a newline"\n2,plain\n');
  writeFileSync(join(dir, "g.txt"), Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a])); // Latin-1 "café"
  writeFileSync(join(dir, "h.bin"), Buffer.from([0, 1, 2]));
  writeFileSync(join(dir, "i.pdf"), "%PDF-1.4\n");
  writeFileSync(join(dir, ".hidden.txt"), "hidden");
  return dir;
}

describe("DocumentLoader", () => {
  test("reads every supported type recursively, with a per-file report", async () => {
    const dir = raw();
    const r = await new DocumentLoader({ cleanText: true }).loadDirectory(dir);
    const status = Object.fromEntries(r.files.map((f) => [f.path, f.status]));
    expect(status).toMatchObject({ "a.txt": "kept", "sub/b.md": "kept", "sub/deeper/c.html": "kept", "d.jsonl": "kept", "f.csv": "kept", "g.txt": "skipped", "h.bin": "skipped", "e.json": "skipped" });
    expect(Object.keys(status)).not.toContain(".hidden.txt");
    expect(r.texts[0]).toBe("Caf\u00e9 opens at nine.\n\nBring a mug."); // NFC, tabs/space runs, CRLF, blank runs, BEL
    const html = r.texts[r.sources.indexOf("sub/deeper/c.html")];
    expect(html).toContain("Fish & chips");
    expect(html).toContain("cost £5");
    expect(html).not.toMatch(/color|var x|enable js/);
    expect(r.texts.filter((_, i) => r.sources[i] === "d.jsonl")).toEqual(["first record", "second record"]);
    expect(r.texts.filter((_, i) => r.sources[i] === "f.csv")).toEqual(['a, quoted "cell"\nwith a newline', "plain"]);
    const g = r.files.find((f) => f.path === "g.txt")!;
    expect(g.reason).toContain("not UTF-8 text: invalid byte 0xe9 at offset 3");
    expect(r.files.find((f) => f.path === "e.json")!.reason).toContain('no record has a string field "text"');
    const pdf = r.files.find((f) => f.path === "i.pdf")!;
    expect(pdf.status).toBe("skipped");
    expect(pdf.reason).toBe("unpdf could not read it: InvalidPDFException: Invalid PDF structure."); // read in a child process: the run goes on
    const report = formatReport(r).join("\n");
    expect(report).toContain("skipped h.bin (unsupported type .bin)");
  });
  test("encoding latin1 converts instead of refusing; jsonField picks the field", async () => {
    const dir = raw();
    const r = await new DocumentLoader({ encoding: "latin1", jsonField: "content" }).loadDirectory(dir);
    expect(r.texts[r.sources.indexOf("g.txt")]).toBe("café");
    expect(r.texts[r.sources.indexOf("e.json")]).toBe("json content");
  });
  test("minLength and duplicates are removed and counted", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kiln-docs-dup-"));
    const long = "the quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat by the door ".repeat(3);
    writeFileSync(join(dir, "1.txt"), long);
    writeFileSync(join(dir, "2.txt"), long);
    writeFileSync(join(dir, "3.txt"), long.replace("lazy", "sleepy"));
    writeFileSync(join(dir, "4.txt"), "short");
    writeFileSync(join(dir, "5.txt"), "an entirely different document about rivers, mills, bridges and the weather in spring");
    const r = await new DocumentLoader({ removeDuplicates: true, minLength: 10 }).loadDirectory(dir);
    expect(r.removed).toMatchObject({ exact: 1, near: 1, short: 1 });
    expect(r.sources).toEqual(["1.txt", "5.txt"]);
    expect(r.files.find((f) => f.path === "3.txt")!.reason).toMatch(/near-duplicate of 1\.txt \(similarity 0\.\d\d\)/);
  });
});

describe("cleaning", () => {
  test("cleanText", () => {
    expect(cleanText("a\u00a0\u00a0b \u200b c\u0000\n\n\n\nd  ")).toBe("a b c\n\nd");
  });
  test("boilerplate lines repeated across documents go", () => {
    const docs = ["Home | About\nreal text one", "Home | About\nreal text two", "Home | About\nreal text three", "unique"];
    const r = removeBoilerplate(docs);
    expect(r.removed).toEqual(["Home | About"]);
    expect(r.texts).toEqual(["real text one", "real text two", "real text three", "unique"]);
  });
  test("html and csv helpers", async () => {
    expect((await htmlToText("<p>a</p><p>b &lt;c&gt;</p>")).trim()).toBe("a\nb <c>");
    expect(parseCsv("x,y\r\n1,2\r\n")).toEqual([["x", "y"], ["1", "2"]]);
  });
});

describe("near-duplicate detection (MinHash + LSH)", () => {
  // a fixture of known pairs: 60 distinct documents, and 40 near-copies (about 5% of words changed,
  // Jaccard of word 3-grams ~0.75-0.9), each paired with the distinct document it was made from
  let seed = 12345;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const vocab = Array.from({ length: 3000 }, (_, i) => `w${i.toString(36)}`);
  const doc = (n: number) => Array.from({ length: n }, () => vocab[Math.floor(rand() * vocab.length)]).join(" ");
  const distinct = Array.from({ length: 60 }, () => doc(200));
  const nearPairs = distinct.slice(0, 40).map((d, i) => {
    const words = d.split(" ");
    for (let k = 0; k < 4; k++) words[Math.floor(rand() * words.length)] = vocab[Math.floor(rand() * vocab.length)];
    return { of: i, text: words.join(" ") };
  });
  const texts = [...distinct, ...nearPairs.map((p) => p.text)];

  test("precision and recall on the fixture", () => {
    const r = dedupe(texts, { threshold: 0.8 });
    const truth = new Set(nearPairs.map((_, i) => 60 + i));
    const found = new Set(r.removed.map((x) => x.index));
    const tp = [...found].filter((i) => truth.has(i)).length;
    const precision = tp / found.size;
    const recall = tp / truth.size;
    console.log(`dedupe fixture: precision ${precision.toFixed(3)}, recall ${recall.toFixed(3)} (threshold 0.8, ${lshBands(128, 0.8).bands} bands)`);
    expect(precision).toBe(1);
    expect(recall).toBeGreaterThanOrEqual(0.95);
    for (const x of r.removed) expect(x.of).toBe(nearPairs[x.index - 60].of);
    expect(r.kept).toHaveLength(texts.length - found.size);
  });
  test("the threshold is honoured: a strict one keeps the edited copies", () => {
    const r = dedupe(texts, { threshold: 0.99 });
    expect(r.near).toBe(0);
    expect(dedupe(texts, { near: false }).near).toBe(0);
    expect(() => dedupe(texts, { threshold: 0 })).toThrow(/threshold/);
  });
});
