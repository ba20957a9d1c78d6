// Text cleaning for training corpora: Unicode NFC, control characters out, whitespace runs collapsed,
// and lines repeated across many documents (navigation, footers, licence banners) removed.

/** NFC, no control characters (tab and newline kept), CRLF → LF, spaces collapsed, ≤ one blank line. */
export function cleanText(text: string): string {
  return text
    .normalize("NFC")
    .replace(/\r\n?/g, "\n")
    // C0/C1 controls except \t and \n; zero-width and BOM characters
    .replace(/[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u200B\u200C\u200D\u2060\uFEFF]/g, "")
    .replace(/[^\S\n]+/g, " ")
    .replace(/ ?\n ?/g, "\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}

/**
 * Removes lines that occur in at least `minDocs` documents and in at least `fraction` of them
 * (boilerplate); returns the new texts and the lines removed.
 */
export function removeBoilerplate(texts: string[], { minDocs = 3, fraction = 0.5 }: { minDocs?: number; fraction?: number } = {}): { texts: string[]; removed: string[] } {
  const docsWith = new Map<string, number>();
  for (const t of texts) {
    for (const line of new Set(t.split("\n").map((l) => l.trim()).filter((l) => l.length > 0))) docsWith.set(line, (docsWith.get(line) ?? 0) + 1);
  }
  const need = Math.max(minDocs, Math.ceil(fraction * texts.length));
  const removed = [...docsWith].filter(([, n]) => n >= need).map(([line]) => line);
  if (!removed.length) return { texts, removed };
  const drop = new Set(removed);
  return {
    texts: texts.map((t) => t.split("\n").filter((l) => !drop.has(l.trim())).join("\n").replace(/\n{3,}/g, "\n\n").trim()),
    removed,
  };
}
