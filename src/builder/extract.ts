// Text out of one document file, by extension: .txt/.md as they are, .html text only (no scripts,
// styles), .json/.jsonl a named field, .csv a named column, .pdf and .docx through optional packages
// in a child process per file (extract_binary.ts).

import { readTextFile } from "../data/text_file.ts";
import { UserError } from "../util/errors.ts";
import { extractBinary } from "./extract_binary.ts";

export interface ExtractOptions {
  /** the text field of .json/.jsonl records (default "text") */
  jsonField?: string;
  /** the text column of .csv files (default "text") */
  csvColumn?: string;
  /** decode text files as this ("utf-8" default, strict; "latin1" converts) */
  encoding?: string;
  /** the most milliseconds one .pdf/.docx file may take to read (default 60,000) */
  timeoutMs?: number;
}

export const DOCUMENT_EXTENSIONS = [".txt", ".md", ".markdown", ".html", ".htm", ".json", ".jsonl", ".csv", ".pdf", ".docx"];

/** A file's documents (a .jsonl/.csv file holds many). Throws a UserError naming the file and why. */
export async function extractDocuments(path: string, ext: string, options: ExtractOptions = {}): Promise<string[]> {
  const what = "document";
  switch (ext) {
    case ".txt": case ".md": case ".markdown":
      return [await readTextFile(path, { encoding: options.encoding, what })];
    case ".html": case ".htm":
      return [await htmlToText(await readTextFile(path, { encoding: options.encoding, what }))];
    case ".json": case ".jsonl": {
      const text = await readTextFile(path, { encoding: options.encoding, what });
      const field = options.jsonField ?? "text";
      let records: unknown[];
      if (ext === ".jsonl") {
        records = [];
        const lines = text.split("\n");
        for (let i = 0; i < lines.length; i++) {
          if (!lines[i].trim()) continue;
          try {
            records.push(JSON.parse(lines[i]));
          } catch {
            throw new UserError(`${path} line ${i + 1}: not valid JSON`);
          }
        }
      } else {
        let v: unknown;
        try {
          v = JSON.parse(text);
        } catch {
          throw new UserError(`${path}: not valid JSON`);
        }
        records = Array.isArray(v) ? v : [v];
      }
      const out = records.map((r) => (r && typeof r === "object" ? (r as Record<string, unknown>)[field] : undefined)).filter((t): t is string => typeof t === "string");
      if (!out.length && records.length) throw new UserError(`${path}: no record has a string field "${field}" (set jsonField / --json-field)`);
      return out;
    }
    case ".csv": {
      const rows = parseCsv(await readTextFile(path, { encoding: options.encoding, what }));
      const column = options.csvColumn ?? "text";
      const at = rows[0]?.indexOf(column) ?? -1;
      if (at < 0) throw new UserError(`${path}: no column "${column}" in the header (${(rows[0] ?? []).join(", ")}); set csvColumn / --csv-column`);
      return rows.slice(1).map((r) => r[at] ?? "").filter((t) => t.length > 0);
    }
    case ".pdf": case ".docx":
      return [await extractBinary(path, ext, { timeoutMs: options.timeoutMs })];
    default:
      throw new UserError(`${path}: unsupported file type ${ext || "(none)"} (supported: ${DOCUMENT_EXTENSIONS.join(" ")})`);
  }
}

const BLOCKS = "p,div,br,li,tr,h1,h2,h3,h4,h5,h6,section,article,header,footer,blockquote,pre,table,ul,ol,title";

/** The visible text of an HTML page (Bun's HTMLRewriter; script/style/noscript/template dropped). */
export async function htmlToText(html: string): Promise<string> {
  const parts: string[] = [];
  let skip = 0;
  const rewriter = new HTMLRewriter()
    .on("script,style,noscript,template,svg", {
      element(e) {
        skip++;
        e.onEndTag(() => void skip--);
      },
    })
    .on(BLOCKS, { element: () => void parts.push("\n") })
    .onDocument({ text: (t) => void (skip === 0 && parts.push(t.text)) });
  await rewriter.transform(new Response(html)).text();
  return decodeEntities(parts.join(""));
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: " ", mdash: "—", ndash: "–", hellip: "…", copy: "©" };
function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e: string) => {
    if (e[0] === "#") {
      const cp = e[1] === "x" || e[1] === "X" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
    }
    return ENTITIES[e.toLowerCase()] ?? m;
  });
}

/** RFC 4180 CSV: quoted fields, "" escapes, newlines inside quotes. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") row.push(field), (field = "");
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(field), rows.push(row), (row = []), (field = "");
    } else field += c;
  }
  if (field || row.length) row.push(field), rows.push(row);
  return rows.filter((r) => r.length > 1 || r[0] !== "");
}
