// WebGPU launches of layer_norm (one workgroup of tuning.rowThreads threads per row) and
// layer_norm_backward (dx: one workgroup per row; dweight and dbias: one thread per column) from
// kernels/layer_norm.wgsl.
import { f, grid1d, type KernelTable, pack, rowConstants, u } from "../launch.ts";

const WG = 64;

export const LAYER_NORM: KernelTable<"layer_norm" | "layer_norm_backward"> = {
  layer_norm: (ctx, [x, weight, bias], [out, mean, rstd], p) => {
    if (p.rows === 0) return;
    const params = pack(u(p.rows), u(p.C), f(p.eps));
    ctx.launch("layer_norm", "layer_norm", [x!, weight!, bias!, out, mean, rstd], params, grid1d(p.rows, 1), rowConstants(ctx));
  },
  layer_norm_backward: (ctx, [dout, x, weight, mean, rstd], [dx, dweight, dbias], p) => {
    const params = pack(u(p.rows), u(p.C));
    if (p.rows > 0) {
      ctx.launch("layer_norm", "layer_norm_backward", [dout!, x!, weight!, mean!, rstd!, dx], params, grid1d(p.rows, 1), rowConstants(ctx));
    }
    ctx.launch("layer_norm", "layer_norm_backward_dweight", [dout!, x!, mean!, rstd!, dweight, dbias], params, [Math.ceil(p.C / WG), 1, 1]);
  },
};
