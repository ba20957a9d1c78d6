// .pdf and .docx text through optional packages (unpdf: pdf.js built for server runtimes; mammoth:
// docx → text), each file read in its own Bun child process with a timeout. pdf.js on a broken or
// hostile file can reject a promise nobody awaits (which ends the process that holds it), loop, or
// grow without bound: in a child, any of those is one file skipped with its reason, and the
// loading run goes on. This file is both the parent's function and the child's entry point.

import { readFile } from "node:fs/promises";
import { UserError } from "../util/errors.ts";

/** The optional package that reads each binary type. */
export const BINARY_READERS: Readonly<Record<string, string>> = { ".pdf": "unpdf", ".docx": "mammoth" };

export interface BinaryExtractOptions {
  /** the most milliseconds one file may take (default 60,000) */
  timeoutMs?: number;
  /** the package to read with (default BINARY_READERS[ext]) */
  reader?: string;
}

type ChildResult = { ok: true; text: string } | { ok: false; error: string; missing?: boolean };

const missing = new Set<string>(); // packages found absent in this process: later files skip at once

/** The text of a .pdf or .docx file. Throws a UserError naming the file and why it was not read. */
export async function extractBinary(path: string, ext: string, options: BinaryExtractOptions = {}): Promise<string> {
  const reader = options.reader ?? BINARY_READERS[ext];
  if (!reader) throw new UserError(`${path}: no reader for ${ext} files`);
  const needs = `needs the optional package "${reader}" (npm install ${reader})`;
  if (missing.has(reader)) throw new UserError(`${path}: ${needs}`);
  const timeoutMs = options.timeoutMs ?? 60_000;
  const proc = Bun.spawn([process.execPath, import.meta.path, ext, reader, path], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, timeoutMs);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  if (timedOut) throw new UserError(`${path}: the ${reader} reader took longer than ${timeoutMs / 1000} s (killed)`);
  let result: ChildResult | undefined;
  try {
    result = JSON.parse(stdout.trim().split("\n").pop() ?? "") as ChildResult;
  } catch {
    const last = stderr.trim().split("\n").filter(Boolean).pop();
    throw new UserError(`${path}: the ${reader} reader process ended with ${proc.signalCode ?? `code ${code}`}${last ? `: ${last.slice(0, 200)}` : ""}`);
  }
  if (result.ok) return result.text;
  if (result.missing) {
    missing.add(reader);
    throw new UserError(`${path}: ${needs}`);
  }
  throw new UserError(`${path}: ${reader} could not read it: ${result.error}`);
}

/** Child side: read one file, print one JSON line (ChildResult). */
async function child(ext: string, reader: string, path: string): Promise<void> {
  const done = (r: ChildResult, code = 0) => {
    process.stdout.write(JSON.stringify(r) + "\n", () => process.exit(code));
  };
  const fail = (e: unknown, code: number) => done({ ok: false, error: firstLine(e) }, code);
  process.on("unhandledRejection", (e) => fail(e, 1));
  process.on("uncaughtException", (e) => fail(e, 1));
  let mod: Record<string, unknown>;
  try {
    mod = (await import(reader)) as Record<string, unknown>;
  } catch (e) {
    const text = String(e);
    if (/Cannot find (package|module)/i.test(text)) return done({ ok: false, error: text, missing: true });
    return fail(e, 0);
  }
  try {
    const data = await readFile(path);
    if (ext === ".pdf") {
      const { getDocumentProxy, extractText } = mod as { getDocumentProxy(d: Uint8Array): Promise<unknown>; extractText(p: unknown, o: { mergePages: true }): Promise<{ text: string }> };
      const pdf = await getDocumentProxy(new Uint8Array(data));
      done({ ok: true, text: (await extractText(pdf, { mergePages: true })).text });
    } else {
      const { extractRawText } = ((mod as { default?: unknown }).default ?? mod) as { extractRawText(i: { buffer: Buffer }): Promise<{ value: string }> };
      done({ ok: true, text: (await extractRawText({ buffer: data })).value });
    }
  } catch (e) {
    fail(e, 0);
  }
}

function firstLine(e: unknown): string {
  const s = e instanceof Error ? `${e.name === "Error" ? "" : e.name + ": "}${e.message}` : String(e);
  return s.split("\n")[0].replace(/^error:\s*/i, "").replace(/\s+/g, " ").trim().slice(0, 300);
}

if (import.meta.main) await child(process.argv[2], process.argv[3], process.argv[4]);
