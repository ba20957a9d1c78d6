// WebGPU launch of the fused AdamW step (kernels/adamw.wgsl): one thread per element. The bias
// corrections 1 − beta^step and the factors 1 − beta are computed here in float64.
import { f, grid1d, type KernelTable, pack, u } from "../launch.ts";

export const ADAMW: KernelTable<"adamw"> = {
  adamw: (ctx, [grad, gradNormSq], [param, m, v], p) => {
    if (p.n === 0) return;
    const params = pack(
      u(p.n), f(p.lr), f(p.beta1), f(p.beta2), f(p.eps), f(p.weightDecay), f(p.step), f(p.maxNorm),
      f(1 - p.beta1 ** p.step), f(1 - p.beta2 ** p.step), f(1 - p.beta1), f(1 - p.beta2),
    );
    const norm = p.maxNorm > 0 && gradNormSq ? gradNormSq : ctx.dummy;
    ctx.launch("adamw", "adamw", [grad!, norm, param, m, v], params, grid1d(p.n, 256));
  },
};
