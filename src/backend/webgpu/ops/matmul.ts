// WebGPU launch of matmul (kernels/matmul.wgsl). The variant comes from the adapter's tuning
// (device.ts chooseTuning): "matmul" (register-blocked, for CPU adapters such as lavapipe) or
// "matmul_tiled" (shared memory, for GPUs). Transposes are override constants: four pipelines.
import { type KernelTable, pack, u } from "../launch.ts";

export const MATMUL: KernelTable<"matmul"> = {
  matmul: (ctx, [a, b, bias], [out], p) => {
    if (p.batch === 0 || p.M === 0 || p.N === 0) return;
    const params = pack(u(p.batch), u(p.M), u(p.N), u(p.K), u(p.transA), u(p.transB), u(p.strideA), u(p.strideB), u(bias ? p.hasBias : 0));
    const constants = { TRANS_A: p.transA ? 1 : 0, TRANS_B: p.transB ? 1 : 0 };
    const buffers = [a!, b!, bias ?? ctx.dummy, out];
    const entry = ctx.tuning.matmul;
    const tile = entry === "matmul_tiled" ? 64 : 32; // outputs per workgroup side: 16×4 or 8×4
    ctx.launch("matmul", entry, buffers, params, [Math.ceil(p.N / tile), Math.ceil(p.M / tile), p.batch], constants);
  },
};
