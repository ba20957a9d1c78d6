// .pdf and .docx through the optional packages (unpdf, mammoth), each file in a child process:
// text out of real files (tests/fixtures/make_documents.ts: a hand-written DOCX and PDF, a PDF
// printed by Chromium), broken files skipped with their reason while the run goes on, a reader that
// runs too long killed, and an absent package named in one line.

import { describe, expect, spyOn, test } from "bun:test";
import { copyFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DocumentLoader, formatReport } from "../../src/builder/documents.ts";
import { extractBinary } from "../../src/builder/extract_binary.ts";

const ROOT = resolve(import.meta.dir, "../..");
const FIX = join(ROOT, "tests/fixtures/documents");

function folder(files: Record<string, string | Uint8Array>): string {
  const dir = mkdtempSync(join(tmpdir(), "kiln-binary-docs-"));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return dir;
}

describe("PDF and DOCX", () => {
  test("text out of a hand-written DOCX, a hand-written PDF and a PDF printed by Chromium", async () => {
    const dir = folder({});
    for (const f of ["letter.docx", "plain.pdf", "printed.pdf"]) copyFileSync(join(FIX, f), join(dir, f));
    const r = await new DocumentLoader({ cleanText: true }).loadDirectory(dir);
    expect(r.files.map((f) => [f.path, f.status])).toEqual([["letter.docx", "kept"], ["plain.pdf", "kept"], ["printed.pdf", "kept"]]);
    const text = (name: string) => r.texts[r.sources.indexOf(name)];
    expect(text("letter.docx")).toBe("Dear Committee,\n\nThe mill by the old bridge reopens in spring — the café beside it too.\n\nOpening hours\n\n9 to 17\n\nYours, Ada Lovelace");
    expect(text("plain.pdf")).toBe("The river runs north past the mill.\nIt turns (slowly) at the bridge.\nSecond page: the weather in spring.");
    expect(text("printed.pdf")).toBe("Harbour notes\nBoats leave at dawn when the tide allows; the ferry to the island runs twice a day.\nPrices: café au lait 3 €, naïve pastry 2 €.\nNorth pier\nSouth pier");
  });

  test("broken files are skipped with their reason and the run goes on", async () => {
    const dir = folder({ "a.txt": "a text file read after the broken ones", "stub.pdf": "%PDF-1.4\n", "zero.pdf": "", "random.docx": new Uint8Array(64).map((_, i) => (i * 37) & 255) });
    copyFileSync(join(FIX, "truncated.pdf"), join(dir, "truncated.pdf"));
    copyFileSync(join(FIX, "broken.docx"), join(dir, "broken.docx"));
    copyFileSync(join(FIX, "plain.pdf"), join(dir, "z_plain.pdf"));
    const r = await new DocumentLoader().loadDirectory(dir);
    const reason = Object.fromEntries(r.files.map((f) => [f.path, f.status === "skipped" ? f.reason : "kept"]));
    expect(reason["a.txt"]).toBe("kept");
    expect(reason["z_plain.pdf"]).toBe("kept");
    expect(reason["stub.pdf"]).toMatch(/^unpdf could not read it: InvalidPDFException: Invalid PDF structure/);
    expect(reason["truncated.pdf"]).toMatch(/^unpdf could not read it: InvalidPDFException/);
    expect(reason["zero.pdf"]).toMatch(/^unpdf could not read it: .*empty/i);
    expect(reason["broken.docx"]).toMatch(/^mammoth could not read it: .*xmldom/);
    expect(reason["random.docx"]).toMatch(/^mammoth could not read it: .*zip/i);
    const report = formatReport(r).join("\n");
    expect(report).toContain("skipped stub.pdf (unpdf could not read it: InvalidPDFException: Invalid PDF structure.)");
    expect(report).not.toContain("    at "); // reasons are one line, no stack
  });

  test("a reader that takes too long is killed and the file skipped", async () => {
    // 1 ms: the child cannot even start in time, so the timeout always fires first
    await expect(extractBinary(join(FIX, "plain.pdf"), ".pdf", { timeoutMs: 1 })).rejects.toThrow(/plain\.pdf: the unpdf reader took longer than 0\.001 s \(killed\)/);
    const dir = folder({});
    copyFileSync(join(FIX, "letter.docx"), join(dir, "slow.docx"));
    const r = await new DocumentLoader({ timeoutMs: 1 }).loadDirectory(dir);
    expect(formatReport(r)[0]).toBe("skipped slow.docx (the mammoth reader took longer than 0.001 s (killed))");
  });

  test("an absent optional package is named in one line, and not looked for again", async () => {
    const path = join(FIX, "plain.pdf");
    const err = await extractBinary(path, ".pdf", { reader: "kiln-absent-pdf-reader" }).catch((e: Error) => e);
    expect((err as Error).message).toBe(`${path}: needs the optional package "kiln-absent-pdf-reader" (npm install kiln-absent-pdf-reader)`);
    const spawn = spyOn(Bun, "spawn");
    try {
      const again = await extractBinary(path, ".pdf", { reader: "kiln-absent-pdf-reader" }).catch((e: Error) => e);
      expect((again as Error).message).toBe((err as Error).message);
      expect(spawn).not.toHaveBeenCalled(); // known absent: no child process the second time
    } finally {
      spawn.mockRestore();
    }
  });
});

describe("kiln data load with PDF and DOCX", () => {
  test("kept and skipped lines, --timeout checked", async () => {
    const dir = folder({ "stub.pdf": "%PDF-1.4\n" });
    copyFileSync(join(FIX, "letter.docx"), join(dir, "letter.docx"));
    const run = async (...args: string[]) => {
      const proc = Bun.spawn([process.execPath, join(ROOT, "src/cli/main.ts"), "data", "load", ...args], { stdout: "pipe", stderr: "pipe" });
      const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      return { stdout, stderr, code };
    };
    const r = await run("--input", dir, "--out", join(dir, "out.txt"), "--timeout", "30");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("kept    letter.docx: 1/1 document(s)");
    expect(r.stdout).toContain("skipped stub.pdf (unpdf could not read it: InvalidPDFException: Invalid PDF structure.)");
    const bad = await run("--input", dir, "--out", join(dir, "out.txt"), "--timeout", "0");
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe('kiln data: --timeout: invalid value "0"');
  });
});
