// WebGPU launches of the reductions (kernels/reduce.wgsl): one workgroup per output for sum and
// max, one workgroup in all for sum_squares.
import { grid1d, type KernelTable, pack, u } from "../launch.ts";


export const REDUCE: KernelTable<"sum" | "max" | "sum_squares"> = {
  sum: (ctx, [x], [out], p) => {
    const outputs = p.outer * p.inner;
    if (outputs > 0) ctx.launch("reduce", "sum", [x!, out], pack(u(p.outer), u(p.len), u(p.inner)), grid1d(outputs, 1));
  },
  max: (ctx, [x], [out, idx], p) => {
    const outputs = p.outer * p.inner;
    if (outputs > 0) ctx.launch("reduce", "max", [x!, out, idx], pack(u(p.outer), u(p.len), u(p.inner)), grid1d(outputs, 1));
  },
  sum_squares: (ctx, [x], [out], p) => {
    ctx.launch("reduce", "sum_squares", [x!, out], pack(u(p.n), u(p.accumulate)), [1, 1, 1]);
  },
};

