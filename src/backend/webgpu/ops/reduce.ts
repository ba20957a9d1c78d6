// WebGPU launches of the reductions (kernels/reduce.wgsl), tuning.rowThreads threads per
// workgroup: one workgroup per output for sum and max; sum_squares in one workgroup for small
// inputs, else one workgroup per chunk writing a partial sum and a second pass adding the partials
// (a fixed split per n: deterministic).
import { grid1d, type KernelTable, pack, rowConstants, u } from "../launch.ts";

/** Inputs up to this many elements are summed by one workgroup. */
const ONE_PASS = 8192;
/** At most this many partial sums (chunks). */
const MAX_CHUNKS = 256;

export const REDUCE: KernelTable<"sum" | "max" | "sum_squares"> = {
  sum: (ctx, [x], [out], p) => {
    const outputs = p.outer * p.inner;
    if (outputs === 0) return;
    ctx.launch("reduce", "sum", [x!, out], pack(u(p.outer), u(p.len), u(p.inner)), grid1d(outputs, 1), rowConstants(ctx));
  },
  max: (ctx, [x], [out, idx], p) => {
    const outputs = p.outer * p.inner;
    if (outputs === 0) return;
    ctx.launch("reduce", "max", [x!, out, idx], pack(u(p.outer), u(p.len), u(p.inner)), grid1d(outputs, 1), rowConstants(ctx));
  },
  sum_squares: (ctx, [x], [out], p) => {
    const RW = ctx.tuning.rowThreads;
    if (p.n <= ONE_PASS) {
      ctx.launch("reduce", "sum_squares", [x!, out], pack(u(p.n), u(p.accumulate)), [1, 1, 1], { RW, SQUARE: 1 });
      return;
    }
    const chunks = Math.min(MAX_CHUNKS, Math.ceil(p.n / (ONE_PASS / 2)));
    const chunk = Math.ceil(p.n / chunks);
    const partial = ctx.temp(chunks * 4);
    ctx.launch("reduce", "sum_squares_partial", [x!, partial], pack(u(p.n), u(chunk)), [Math.ceil(p.n / chunk), 1, 1], { RW });
    ctx.launch("reduce", "sum_squares", [partial, out], pack(u(Math.ceil(p.n / chunk)), u(p.accumulate)), [1, 1, 1], { RW, SQUARE: 0 });
  },
};
