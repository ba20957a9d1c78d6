// Collation in two halves: `collateHost` stacks examples into plain typed arrays (no tensors, no
// backend: it runs in data-loader worker threads too), `toTensors` uploads them. Rows of different
// lengths are right-padded: inputs with padTokenId, target columns (y, labels, targets) with -100,
// the cross-entropy ignore index.

import { ConfigError } from "./config.ts";

/** One example: named numbers or rows of numbers. */
export type Example = Record<string, number | ArrayLike<number>>;

/** One collated column in host memory. */
export interface HostColumn {
  data: Float32Array | Int32Array;
  shape: number[];
  dtype: "f32" | "i32";
}

export type HostBatch = Record<string, HostColumn>;

export interface HostCollateOptions {
  padTokenId?: number;
  /** pad value of target columns (y, labels): -100, ignored by crossEntropy */
  targetPad?: number;
}

const TARGET_KEYS = new Set(["y", "labels", "targets"]);

/** Stacks examples into one typed array per column; rows of different lengths are right-padded. */
export function collateHost(examples: readonly Example[], { padTokenId, targetPad = -100 }: HostCollateOptions = {}): HostBatch {
  const out: HostBatch = {};
  const B = examples.length;
  for (const key of Object.keys(examples[0])) {
    const values = examples.map((e) => e[key]);
    if (typeof values[0] === "number") {
      const nums = values as number[];
      const int = nums.every(Number.isInteger) && !(examples[0][key] as unknown instanceof Float32Array);
      out[key] = { data: int ? Int32Array.from(nums) : Float32Array.from(nums), shape: [B], dtype: int ? "i32" : "f32" };
      continue;
    }
    const rows = values as ArrayLike<number>[];
    const int = rows.every((r) => r instanceof Int32Array || (!(r instanceof Float32Array) && Array.from(r).every(Number.isInteger)));
    const L = Math.max(...rows.map((r) => r.length));
    const ragged = rows.some((r) => r.length !== L);
    let pad = 0;
    if (ragged) {
      if (TARGET_KEYS.has(key)) pad = targetPad;
      else if (padTokenId === undefined) {
        throw new ConfigError(`rows of "${key}" have different lengths (${Math.min(...rows.map((r) => r.length))}..${L}) and no pad_token_id is set: add padTokenId (pad_token_id) to the config or the TaskSpec`);
      } else pad = padTokenId;
    }
    const data = int ? new Int32Array(B * L).fill(pad) : new Float32Array(B * L).fill(pad);
    rows.forEach((r, i) => data.set(r, i * L));
    out[key] = { data, shape: [B, L], dtype: int ? "i32" : "f32" };
  }
  return out;
}
