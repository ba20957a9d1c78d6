// WebGPU launches of embedding (one thread per output element; embedding_half for a 16-bit weight) and embedding_backward (one thread
// per column, deterministic accumulation) from kernels/embedding.wgsl.
import { grid1d, type KernelTable, pack, u } from "../launch.ts";

const WG = 256;

export const EMBEDDING: KernelTable<"embedding" | "embedding_backward"> = {
  embedding: (ctx, [ids, weight], [out], p) => {
    if (p.n * p.C === 0) return;
    const params = pack(u(p.n), u(p.V), u(p.C));
    if (p.dtype) ctx.launch("embedding", "embedding_half", [ids!, weight!, out], params, grid1d(p.n * p.C, WG), { DTYPE: p.dtype });
    else ctx.launch("embedding", "embedding", [ids!, weight!, out], params, grid1d(p.n * p.C, WG));
  },
  embedding_backward: (ctx, [ids, dout], [dweight], p) => {
    if (p.n * p.C > 0) {
      ctx.launch("embedding", "embedding_backward", [ids!, dout!, dweight], pack(u(p.n), u(p.V), u(p.C)), [Math.ceil(p.C / WG), 1, 1]);
    }
  },
};
