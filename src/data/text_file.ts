// Reading a training text file: strict UTF-8 by default, so a Latin-1 or binary file is refused with
// the byte offset of the first bad sequence (and a guess at what the file is) instead of training on
// U+FFFD replacement characters; `encoding: "latin1"` converts such a file when asked. Missing files,
// folders and unreadable files are DataFileErrors that say which.
// Reference: WHATWG Encoding (TextDecoder with fatal: true; "latin1" is windows-1252 there).

import { readFile, stat } from "node:fs/promises";
import { UserError, describeFsError, isUserFsError } from "../util/errors.ts";

export class DataFileError extends UserError {
  override name = "DataFileError";
}

/** Encodings a text file may be read as: strict UTF-8 (default), or Latin-1 (windows-1252) converted. */
export const TEXT_ENCODINGS = ["utf-8", "latin1"] as const;
export type TextEncodingName = (typeof TEXT_ENCODINGS)[number];

/**
 * The text of `path`, decoded as `encoding` (default strict UTF-8; a leading BOM is dropped).
 * `what` names the file in messages ("--data").
 */
export async function readTextFile(path: string, { encoding = "utf-8", what = "data file" }: { encoding?: string; what?: string } = {}): Promise<string> {
  if (!(TEXT_ENCODINGS as readonly string[]).includes(encoding))
    throw new DataFileError(`${what} ${path}: unknown encoding ${JSON.stringify(encoding)} (supported: ${TEXT_ENCODINGS.join(", ")})`);
  let bytes: Uint8Array;
  try {
    if ((await stat(path)).isDirectory()) throw new DataFileError(`${what} ${path} is a directory, not a text file`);
    bytes = await readFile(path);
  } catch (e) {
    if (e instanceof DataFileError) throw e;
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new DataFileError(`${what} ${path} not found`);
    if (isUserFsError(e)) throw new DataFileError(`${what} ${path}: ${describeFsError(e)}`);
    throw e;
  }
  if (encoding === "latin1") return new TextDecoder("latin1").decode(bytes);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    throw new DataFileError(`${what} ${path} is not UTF-8 text: invalid byte 0x${bytes[at].toString(16).padStart(2, "0")} at offset ${at}; ${guess(bytes)}`);
  }
}

/** What a non-UTF-8 file probably is, and what to do about it. */
function guess(bytes: Uint8Array): string {
  const head = bytes.subarray(0, 65536);
  let controls = 0;
  for (const b of head) if (b === 0 || (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d && b !== 0x0c)) controls++;
  if (head.includes(0) || controls > head.length / 100) return "it looks like a binary file, not text";
  if (head.length >= 2 && ((head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff)))
    return "it starts with a UTF-16 byte-order mark: convert it to UTF-8 (e.g. iconv -f UTF-16 -t UTF-8)";
  return "it may be Latin-1 or Windows-1252 text: convert it to UTF-8, or pass --encoding latin1 to read it as such";
}

/** Byte offset of the first ill-formed UTF-8 sequence (the decoder said there is one). */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c < 0x80) n = 0;
    else if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c === 0xe0) lo = 0xa0;
      if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if (d === undefined) return i;
      if (k === 1 ? d < lo || d > hi : d < 0x80 || d > 0xbf) return i;
    }
    i += n + 1;
  }
  return b.length;
}
