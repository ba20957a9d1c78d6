// DocumentLoader: a folder of raw documents → clean training texts, with a per-file report (kept,
// skipped and why) and counts of what cleaning and dedupe removed. Not the engine's batch DataLoader.
// Non-UTF-8 files are refused with the byte offset (or converted when `encoding` asks), never
// decoded with U+FFFD: readTextFile's rule, reported per file here instead of ending the run.

import { readdir, stat } from "node:fs/promises";
import { extname, join, relative } from "node:path";
import { UserError } from "../util/errors.ts";
import { cleanText, removeBoilerplate } from "./clean.ts";
import { dedupe } from "./dedupe.ts";
import { DOCUMENT_EXTENSIONS, extractDocuments, type ExtractOptions } from "./extract.ts";

export interface DocumentLoaderOptions extends ExtractOptions {
  /** NFC, control characters, whitespace runs, boilerplate lines (default true) */
  cleanText?: boolean;
  /** exact and near-duplicate removal (default false) */
  removeDuplicates?: boolean;
  /** Jaccard threshold of near-duplicates (default 0.8) */
  dedupeThreshold?: number;
  /** drop documents shorter than this many characters after cleaning (default 1) */
  minLength?: number;
  /** extensions read (default every supported one) */
  extensions?: string[];
}

export interface FileReport {
  path: string;
  status: "kept" | "skipped";
  /** why skipped, or what was dropped from it */
  reason?: string;
  /** documents the file held, and kept */
  documents: number;
  kept: number;
  chars: number;
}

export interface LoadedDocuments {
  texts: string[];
  /** the file each text came from */
  sources: string[];
  files: FileReport[];
  removed: { exact: number; near: number; short: number; boilerplateLines: number };
}

export class DocumentLoader {
  readonly options: DocumentLoaderOptions;
  constructor(options: DocumentLoaderOptions = {}) {
    this.options = options;
  }

  /** Every supported file under `dir` (recursive, sorted, hidden files skipped). */
  async loadDirectory(dir: string): Promise<LoadedDocuments> {
    let info;
    try {
      info = await stat(dir);
    } catch {
      throw new UserError(`--input ${dir}: no such file or directory`);
    }
    const files = info.isDirectory() ? await walk(dir) : [dir];
    return this.loadFiles(files, info.isDirectory() ? dir : undefined);
  }

  async loadFiles(paths: string[], root?: string): Promise<LoadedDocuments> {
    const o = this.options;
    const allowed = (o.extensions ?? DOCUMENT_EXTENSIONS).map((e) => (e.startsWith(".") ? e : "." + e).toLowerCase());
    const files: FileReport[] = [];
    let texts: string[] = [];
    let sources: string[] = [];
    for (const path of paths) {
      const name = root ? relative(root, path) : path;
      const ext = extname(path).toLowerCase();
      if (!allowed.includes(ext)) {
        files.push({ path: name, status: "skipped", reason: `unsupported type ${ext || "(no extension)"}`, documents: 0, kept: 0, chars: 0 });
        continue;
      }
      try {
        const docs = await extractDocuments(path, ext, o);
        files.push({ path: name, status: "kept", documents: docs.length, kept: docs.length, chars: 0 });
        for (const d of docs) texts.push(o.cleanText === false ? d : cleanText(d)), sources.push(name);
      } catch (e) {
        if (!(e instanceof UserError)) throw e;
        files.push({ path: name, status: "skipped", reason: e.message.replace(path, "").replace(/^[:\s]+/, ""), documents: 0, kept: 0, chars: 0 });
      }
    }
    const removed = { exact: 0, near: 0, short: 0, boilerplateLines: 0 };
    if (o.cleanText !== false) {
      const b = removeBoilerplate(texts);
      texts = b.texts;
      removed.boilerplateLines = b.removed.length;
    }
    const drop = new Set<number>();
    const why = new Map<number, string>();
    const minLength = o.minLength ?? 1;
    texts.forEach((t, i) => {
      if (t.length < minLength) drop.add(i), why.set(i, `shorter than ${minLength} characters`), removed.short++;
    });
    if (o.removeDuplicates) {
      const live = texts.map((_, i) => i).filter((i) => !drop.has(i));
      const d = dedupe(live.map((i) => texts[i]), { threshold: o.dedupeThreshold });
      for (const r of d.removed) {
        drop.add(live[r.index]);
        why.set(live[r.index], r.kind === "exact" ? `duplicate of ${sources[live[r.of]]}` : `near-duplicate of ${sources[live[r.of]]} (similarity ${r.similarity.toFixed(2)})`);
      }
      removed.exact = d.exact;
      removed.near = d.near;
    }
    const byFile = new Map(files.map((f) => [f.path, f]));
    const keptTexts: string[] = [];
    const keptSources: string[] = [];
    texts.forEach((t, i) => {
      const f = byFile.get(sources[i])!;
      if (drop.has(i)) {
        f.kept--;
        f.reason = f.reason ? f.reason : why.get(i);
        return;
      }
      f.chars += t.length;
      keptTexts.push(t);
      keptSources.push(sources[i]);
    });
    for (const f of files) if (f.status === "kept" && f.kept === 0) (f.status = "skipped"), (f.reason ??= "no text");
    return { texts: keptTexts, sources: keptSources, files, removed };
  }
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const e of entries) {
    if (e.name.startsWith(".")) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** The report as lines: one per file, then the totals. */
export function formatReport(r: LoadedDocuments): string[] {
  const lines = r.files.map((f) => `${f.status === "kept" ? "kept   " : "skipped"} ${f.path}${f.status === "kept" ? `: ${f.kept}/${f.documents} document(s), ${f.chars} chars` : ""}${f.reason ? ` (${f.reason})` : ""}`);
  const m = r.removed;
  lines.push(`${r.texts.length} document(s) kept; removed: ${m.exact} exact duplicate(s), ${m.near} near-duplicate(s), ${m.short} too short, ${m.boilerplateLines} boilerplate line(s)`);
  return lines;
}
