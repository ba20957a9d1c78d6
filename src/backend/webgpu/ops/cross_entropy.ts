// WebGPU launches of cross_entropy (one workgroup of tuning.rowThreads threads per row) and
// cross_entropy_backward (one thread per logit) from kernels/cross_entropy.wgsl.
import { grid1d, i, type KernelTable, pack, rowConstants, u } from "../launch.ts";

export const CROSS_ENTROPY: KernelTable<"cross_entropy" | "cross_entropy_backward"> = {
  cross_entropy: (ctx, [logits, targets], [loss, lse], p) => {
    if (p.N === 0) return;
    const params = pack(u(p.N), u(p.V), i(p.ignoreIndex));
    ctx.launch("cross_entropy", "cross_entropy", [logits!, targets!, loss, lse], params, grid1d(p.N, 1), rowConstants(ctx));
  },
  cross_entropy_backward: (ctx, [logits, targets, lse, dloss], [dlogits], p) => {
    const n = p.N * p.V;
    if (n === 0) return;
    const params = pack(u(p.N), u(p.V), i(p.ignoreIndex));
    ctx.launch("cross_entropy", "cross_entropy_backward", [logits!, targets!, lse!, dloss!, dlogits], params, grid1d(n, 256));
  },
};
