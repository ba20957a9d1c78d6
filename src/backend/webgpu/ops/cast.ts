// WebGPU launch of cast (kernels/cast.wgsl): the dtypes are override constants (one pipeline per
// pair); a thread per element for an f32 out, a thread per 4-byte word (two elements) for 16-bit.
import { grid1d, type KernelTable, pack, u } from "../launch.ts";

const WG = 256;

export const CAST: KernelTable<"cast"> = {
  cast: (ctx, [x], [out], p) => {
    if (p.n === 0) return;
    const threads = p.dst === 0 ? p.n : Math.ceil(p.n / 2);
    ctx.launch("cast", "cast_dtype", [x!, out], pack(u(p.n)), grid1d(threads, WG), { SRC: p.src, DST: p.dst });
  },
};
