// WebGPU launches of rms_norm (one workgroup of tuning.rowThreads threads per row) and
// rms_norm_backward (dx: one workgroup per row; dweight: one thread per column) from
// kernels/rms_norm.wgsl.
import { f, grid1d, type KernelTable, pack, rowConstants, u } from "../launch.ts";

const WG = 64;

export const RMS_NORM: KernelTable<"rms_norm" | "rms_norm_backward"> = {
  rms_norm: (ctx, [x, weight], [out, rstd], p) => {
    if (p.rows === 0) return;
    ctx.launch("rms_norm", "rms_norm", [x!, weight!, out, rstd], pack(u(p.rows), u(p.C), f(p.eps)), grid1d(p.rows, 1), rowConstants(ctx));
  },
  rms_norm_backward: (ctx, [dout, x, weight, rstd], [dx, dweight], p) => {
    const params = pack(u(p.rows), u(p.C));
    if (p.rows > 0) ctx.launch("rms_norm", "rms_norm_backward", [dout!, x!, weight!, rstd!, dx], params, grid1d(p.rows, 1), rowConstants(ctx));
    ctx.launch("rms_norm", "rms_norm_backward_dweight", [dout!, x!, rstd!, dweight], params, [Math.ceil(p.C / WG), 1, 1]);
  },
};
