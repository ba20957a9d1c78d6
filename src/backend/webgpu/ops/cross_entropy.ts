// WebGPU launches of cross_entropy (one workgroup per row) and cross_entropy_backward (one thread
// per logit) from kernels/cross_entropy.wgsl.
import { grid1d, i, type KernelTable, pack, u } from "../launch.ts";

export const CROSS_ENTROPY: KernelTable<"cross_entropy" | "cross_entropy_backward"> = {
  cross_entropy: (ctx, [logits, targets], [loss, lse], p) => {
    if (p.N > 0) ctx.launch("cross_entropy", "cross_entropy", [logits!, targets!, loss, lse], pack(u(p.N), u(p.V), i(p.ignoreIndex)), grid1d(p.N, 1));
  },
  cross_entropy_backward: (ctx, [logits, targets, lse, dloss], [dlogits], p) => {
    const n = p.N * p.V;
    if (n > 0) {
      ctx.launch("cross_entropy", "cross_entropy_backward", [logits!, targets!, lse!, dloss!, dlogits], pack(u(p.N), u(p.V), i(p.ignoreIndex)), grid1d(n, 256));
    }
  },
};
