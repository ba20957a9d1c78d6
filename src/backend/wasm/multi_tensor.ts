// Multi-tensor AdamW on the wasm backend: one optimizer step over all parameters (a group of
// `adamw` launches, src/optim/adamw.ts) becomes one job of the worker pool instead of one call per
// parameter. The parameters are cut into pieces of about equal size (at 16-float boundaries, so
// two threads never share a cache line), the pieces are written as a table into wasm memory, and
// each chunk of the job is one call of the export adamw_list_f32 over its part of the table
// (wasm/assembly/adamw.ts), which runs adamw_f32 per piece: results are bit for bit those of one
// launch per parameter.

import type { KernelParams } from "../kernels.ts";
import type { WasmRuntime } from "./module.ts";
import { SPLIT_MIN_NS } from "./parallel.ts";
import { threadPool } from "./threads.ts";

/** One adamw launch: pointers in kernel-list order (grad, gradNormSq, param, m, v) and its params. */
export interface AdamwLaunch {
  ptrs: readonly number[];
  params: KernelParams<"adamw">;
}

/** f64 slots of one table entry (adamw_list_f32): grad, param, m, v, n, lr, weightDecay. */
const ENTRY = 7;
/** Single-thread ns per element of adamw_f32 (reads 4 and writes 3 floats). */
const ADAMW_NS = 1.2;
/** Piece boundaries fall on multiples of this many floats (one 64-byte cache line). */
const LINE = 16;
/** Pieces per participant: > 1 lets the main thread take over the share of a worker that wakes late. */
const CHUNKS_PER_THREAD = 2;

const tables = new WeakMap<WasmRuntime, { ptr: number; entries: number }>();

/**
 * Runs the launches as one pool job. Returns false (nothing run) when they do not share the
 * scalars a list call takes once (gradNormSq, betas, eps, step, maxNorm).
 */
export function runAdamwGroup(rt: WasmRuntime, launches: readonly AdamwLaunch[]): boolean {
  const first = launches[0];
  const shared = (l: AdamwLaunch) =>
    l.ptrs[1] === first.ptrs[1] && l.params.beta1 === first.params.beta1 && l.params.beta2 === first.params.beta2 &&
    l.params.eps === first.params.eps && l.params.step === first.params.step && l.params.maxNorm === first.params.maxNorm;
  if (!launches.every(shared)) return false;
  const total = launches.reduce((s, l) => s + l.params.n, 0);
  const pool = threadPool(rt);
  const split = rt.threads > 1 && total * ADAMW_NS >= SPLIT_MIN_NS;
  if (split) pool.startWorkers();
  const chunkCount = split ? Math.min(pool.participants * CHUNKS_PER_THREAD, 15) : 1;
  const chunks = pieces(launches, total, chunkCount);
  const entries = chunks.reduce((s, c) => s + c.length, 0);
  const table = tableOf(rt, entries);
  const f64 = new Float64Array(rt.memory.buffer, table, entries * ENTRY);
  const { beta1, beta2, eps, step, maxNorm } = first.params;
  const calls: number[][] = [];
  let e = 0;
  for (const chunk of chunks) {
    calls.push([table + e * ENTRY * 8, chunk.length, first.ptrs[1], beta1, beta2, eps, step, maxNorm]);
    for (const { l, start, n } of chunk) {
      const [grad, , param, m, v] = l.ptrs;
      f64.set([grad + start * 4, param + start * 4, m + start * 4, v + start * 4, n, l.params.lr, l.params.weightDecay], e * ENTRY);
      e++;
    }
  }
  pool.run("adamw_list_f32", calls);
  return true;
}

/** The launches cut into `count` runs of pieces with about total / count elements each. */
function pieces(launches: readonly AdamwLaunch[], total: number, count: number) {
  type Piece = { l: AdamwLaunch; start: number; n: number };
  const target = Math.ceil(total / count / LINE) * LINE;
  const chunks: Piece[][] = [[]];
  let room = target;
  for (const l of launches) {
    for (let start = 0; start < l.params.n;) {
      if (room <= 0 && chunks.length < count) {
        chunks.push([]);
        room = target;
      }
      const n = chunks.length === count ? l.params.n - start : Math.min(l.params.n - start, Math.ceil(room / LINE) * LINE);
      chunks[chunks.length - 1].push({ l, start, n });
      start += n;
      room -= n;
    }
  }
  return chunks.filter((c) => c.length > 0);
}

/** The runtime's table block with room for `entries` (grown as needed, kept out of memory stats). */
function tableOf(rt: WasmRuntime, entries: number): number {
  let t = tables.get(rt);
  if (!t || t.entries < entries) {
    if (t) rt.allocator.free(t.ptr);
    t = { ptr: rt.allocator.alloc(Math.max(entries, 64) * ENTRY * 8, false), entries: Math.max(entries, 64) };
    tables.set(rt, t);
  }
  return t.ptr;
}
