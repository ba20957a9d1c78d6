// WebGPU launch of matmul (kernels/matmul.wgsl, kernels/matmul_f16.wgsl). The variant:
//   M = 1 (decoding one token), when the vector dim is 16-byte aligned: the GEMV kernels,
//     matmul_vec (B [K, N]) or matmul_vec_rows (B [N, K]) — the 4×4 kernels waste 3 rows of 4 there;
//   f16 opted in (and the device has shader-f16): matmul_f16_tiled (inference only);
//   else the adapter's choice (device.ts chooseTuning): "matmul" (register-blocked, for CPU
//     adapters such as lavapipe; matmul_vec4 with 16-byte loads when both operands allow it) or
//     "matmul_tiled" (64×64 shared-memory tiles, for GPUs).
// Transposes are override constants (a pipeline per combination, no branch in the inner loop).
import type { KernelParams } from "../../kernels.ts";
import { grid1d, type KernelTable, pack, u } from "../launch.ts";

type Params = KernelParams<"matmul">;

/** Whether both operands' vector dims and batch strides are multiples of 4 (16-byte loads). */
export function vec4Aligned(p: Params): boolean {
  const aDim = p.transA ? p.M : p.K; // the contiguous dim of A
  const bDim = p.transB ? p.K : p.N; // the contiguous dim of B
  return aDim % 4 === 0 && bDim % 4 === 0 && p.strideA % 4 === 0 && p.strideB % 4 === 0;
}

/** The GEMV entry for an M = 1 product, or null when its vector dim is not aligned. */
export function gemvEntry(p: Params): "matmul_vec" | "matmul_vec_rows" | null {
  if (p.M !== 1) return null;
  if (!p.transB) return p.N % 4 === 0 && p.strideB % 4 === 0 ? "matmul_vec" : null;
  return p.K % 4 === 0 && p.strideA % 4 === 0 && p.strideB % 4 === 0 ? "matmul_vec_rows" : null;
}

const WV = 64; // threads (4 outputs each) along N in matmul_vec

export const MATMUL: KernelTable<"matmul"> = {
  matmul: (ctx, [a, b, bias], [out], p) => {
    if (p.batch === 0 || p.M === 0 || p.N === 0) return;
    const params = pack(u(p.batch), u(p.M), u(p.N), u(p.K), u(p.transA), u(p.transB), u(p.strideA), u(p.strideB), u(bias ? p.hasBias : 0));
    const trans = { TRANS_A: p.transA ? 1 : 0, TRANS_B: p.transB ? 1 : 0 };
    const buffers = [a!, b!, bias ?? ctx.dummy, out];
    const t = ctx.tuning;
    const gemv = t.gemv > 0 ? gemvEntry(p) : null;
    if (gemv === "matmul_vec") {
      ctx.launch("matmul", gemv, buffers, params, [Math.ceil(p.N / (4 * WV)), 1, p.batch], { ...trans, WV, KS: t.gemv });
    } else if (gemv === "matmul_vec_rows") {
      const [x, y] = grid1d(Math.ceil(p.N / 4), 1);
      ctx.launch("matmul", gemv, buffers, params, [x, y, p.batch], { ...trans, RW: t.rowThreads });
    } else if (t.f16 && ctx.features.shaderF16) {
      ctx.launch("matmul_f16", "matmul_f16_tiled", buffers, params, [Math.ceil(p.N / 64), Math.ceil(p.M / 64), p.batch], trans);
    } else if (t.matmul === "matmul_tiled") {
      ctx.launch("matmul", "matmul_tiled", buffers, params, [Math.ceil(p.N / 64), Math.ceil(p.M / 64), p.batch], trans);
    } else {
      const entry = vec4Aligned(p) ? "matmul_vec4" : "matmul";
      ctx.launch("matmul", entry, buffers, params, [Math.ceil(p.N / 32), Math.ceil(p.M / 32), p.batch], trans); // 8×8 threads × 4×4
    }
  },
};
