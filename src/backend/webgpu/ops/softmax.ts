// WebGPU launches of softmax and softmax_backward (kernels/softmax.wgsl): one workgroup of
// tuning.rowThreads threads per row.
import { grid1d, type KernelTable, pack, rowConstants, u } from "../launch.ts";

export const SOFTMAX: KernelTable<"softmax" | "softmax_backward"> = {
  softmax: (ctx, [x], [out], p) => {
    if (p.rows === 0) return;
    ctx.launch("softmax", "softmax", [x!, out], pack(u(p.rows), u(p.cols)), grid1d(p.rows, 1), rowConstants(ctx));
  },
  softmax_backward: (ctx, [out, dout], [dx], p) => {
    if (p.rows === 0) return;
    ctx.launch("softmax", "softmax_backward", [out!, dout!, dx], pack(u(p.rows), u(p.cols)), grid1d(p.rows, 1), rowConstants(ctx));
  },
};
