// WebGPU launches of copy and copy_backward (kernels/copy.wgsl): one thread per contiguous element.
import { grid1d, i, type KernelFn, type KernelTable, pack, u } from "../launch.ts";

const WG = 256;

function strided(entry: "copy" | "copy_backward"): KernelFn<"copy"> {
  return (ctx, [src], [dst], p) => {
    if (p.n === 0) return;
    const params = pack(
      u(p.n), u(p.rank), i(p.offset), u(p.d0), u(p.d1), u(p.d2), u(p.d3), u(p.d4), u(p.d5),
      i(p.s0), i(p.s1), i(p.s2), i(p.s3), i(p.s4), i(p.s5),
    );
    ctx.launch("copy", entry, [src!, dst], params, grid1d(p.n, WG));
  };
}

export const COPY: KernelTable<"copy" | "copy_backward"> = {
  copy: strided("copy"),
  copy_backward: strided("copy_backward"),
};
