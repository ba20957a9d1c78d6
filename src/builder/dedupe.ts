// Duplicate removal: exact (hash of the text) and near-duplicate (MinHash signatures bucketed by
// LSH bands, candidates confirmed by their estimated Jaccard similarity ≥ threshold). The first
// document of a group is kept. Shingles are word 3-grams (character 5-grams for very short texts).
// Reference: Broder 1997 (MinHash); Leskovec, Rajaraman, Ullman, Mining of Massive Datasets §3.4 (banding).

export interface DedupeOptions {
  /** remove near-duplicates too (default true); false: exact only */
  near?: boolean;
  /** Jaccard similarity at or above which two documents are near-duplicates (default 0.8) */
  threshold?: number;
  /** MinHash permutations (default 128) */
  numPerm?: number;
}

export interface DedupeResult {
  /** indices of the documents kept, in order */
  kept: number[];
  /** index removed → index of the document it duplicates, and how */
  removed: { index: number; of: number; kind: "exact" | "near"; similarity: number }[];
  exact: number;
  near: number;
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The shingle hashes of a text (word 3-grams, lower-cased; char 5-grams when under 3 words). */
export function shingles(text: string): Uint32Array {
  const words = text.toLowerCase().split(/\s+/).filter(Boolean);
  const set = new Set<number>();
  if (words.length >= 3) for (let i = 0; i + 3 <= words.length; i++) set.add(fnv1a(words[i] + " " + words[i + 1] + " " + words[i + 2]));
  else {
    const s = words.join(" ");
    for (let i = 0; i + 5 <= Math.max(s.length, 5); i++) set.add(fnv1a(s.slice(i, i + 5)));
  }
  return Uint32Array.from(set);
}

/** Seeds of the hash family (fixed: signatures are comparable across runs). */
function seeds(numPerm: number): Uint32Array {
  const out = new Uint32Array(numPerm * 2);
  let x = 0x9e3779b9;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5; // xorshift32
    out[i] = (x >>> 0) | 1;
  }
  return out;
}

/** A MinHash signature: per hash function, the minimum over the shingles. */
export function minhash(sh: Uint32Array, numPerm = 128, s = seeds(numPerm)): Uint32Array {
  const sig = new Uint32Array(numPerm).fill(0xffffffff);
  for (const v of sh) {
    for (let p = 0; p < numPerm; p++) {
      let h = Math.imul(v ^ s[2 * p], s[2 * p + 1]);
      h ^= h >>> 15;
      h = Math.imul(h, 0x2c1b3c6d);
      h ^= h >>> 12;
      if (h >>> 0 < sig[p]) sig[p] = h >>> 0;
    }
  }
  return sig;
}

/** Fraction of equal positions: the estimate of the Jaccard similarity. */
export function similarity(a: Uint32Array, b: Uint32Array): number {
  let eq = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) eq++;
  return eq / a.length;
}

/** The (bands, rows) split of numPerm whose S-curve threshold (1/b)^(1/r) is nearest `threshold`, leaning low (recall). */
export function lshBands(numPerm: number, threshold: number): { bands: number; rows: number } {
  let best = { bands: numPerm, rows: 1 };
  let bestErr = Infinity;
  for (let rows = 1; rows <= numPerm; rows++) {
    if (numPerm % rows) continue;
    const bands = numPerm / rows;
    const t = Math.pow(1 / bands, 1 / rows);
    // candidates are confirmed by their similarity, so a threshold below the target costs only time
    const err = t <= threshold ? threshold - t : 2 * (t - threshold);
    if (err < bestErr) (bestErr = err), (best = { bands, rows });
  }
  return best;
}

/** Exact and near-duplicate removal over `texts` (first occurrence kept). */
export function dedupe(texts: readonly string[], { near = true, threshold = 0.8, numPerm = 128 }: DedupeOptions = {}): DedupeResult {
  if (!(threshold > 0 && threshold <= 1)) throw new RangeError(`dedupe: threshold must be in (0, 1], got ${threshold}`);
  const result: DedupeResult = { kept: [], removed: [], exact: 0, near: 0 };
  const firstOf = new Map<string, number>();
  const { bands, rows } = lshBands(numPerm, threshold);
  const buckets = new Map<string, number[]>();
  const sigs: Uint32Array[] = [];
  const s = seeds(numPerm);
  for (let i = 0; i < texts.length; i++) {
    const key = String(Bun.hash(texts[i]));
    const same = firstOf.get(key);
    if (same !== undefined && texts[same] === texts[i]) {
      result.removed.push({ index: i, of: same, kind: "exact", similarity: 1 });
      result.exact++;
      continue;
    }
    firstOf.set(key, i);
    if (!near) {
      result.kept.push(i);
      continue;
    }
    const sig = minhash(shingles(texts[i]), numPerm, s);
    sigs[i] = sig;
    const keys: string[] = [];
    let match: { of: number; sim: number } | undefined;
    for (let b = 0; b < bands; b++) {
      const k = `${b}:${sig.subarray(b * rows, (b + 1) * rows).join(",")}`;
      keys.push(k);
      for (const j of buckets.get(k) ?? []) {
        const sim = similarity(sig, sigs[j]);
        if (sim >= threshold && (!match || sim > match.sim)) match = { of: j, sim };
      }
    }
    if (match) {
      result.removed.push({ index: i, of: match.of, kind: "near", similarity: match.sim });
      result.near++;
      continue;
    }
    result.kept.push(i);
    for (const k of keys) {
      const list = buckets.get(k);
      if (list) list.push(i);
      else buckets.set(k, [i]);
    }
  }
  return result;
}
