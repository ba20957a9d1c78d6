// WebGPU launch of matmul (kernels/matmul.wgsl, kernels/matmul_f16.wgsl). The variant:
//   B in f16 storage inside withAutocast(true) with shader-f16 (the f16 activation copies autocast
//     keeps for the backward): matmul_f16_half, the f16 product reading B as it is;
//   B in 16-bit storage (dtypeB: frozen f16/bf16 weights): matmul_half, widening B as it loads;
//   inside withAutocast(true) (mixed-precision training), when the device has shader-f16:
//     matmul_f16_tiled for every shape, M = 1 included;
//   M = 1 (decoding one token), when the vector dim is 16-byte aligned: the GEMV kernels,
//     matmul_vec (B [K, N]) or matmul_vec_rows (B [N, K]) — the 4×4 kernels waste 3 rows of 4 there;
//   f16 opted in (and the device has shader-f16): matmul_f16_tiled (inference only);
//   tuning "matmul_tiled" (GPUs): 64×64 shared-memory tiles;
//   tuning "matmul" (CPU adapters such as lavapipe): matmul_vec4 (workgroup-uniform A, 16-byte
//     loads of B) when B's contiguous dim is a multiple of 4, a B [N, K] with M >= 16 being
//     transposed into scratch first; else the 4×4 register-blocked `matmul`.
// Transposes are override constants (a pipeline per combination, no branch in the inner loop).
import type { KernelParams } from "../../kernels.ts";
import type { GpuBuffer } from "../driver.ts";
import { isAutocast } from "../../../tensor/mode.ts";
import { grid1d, i, type KernelContext, type KernelTable, pack, u } from "../launch.ts";

type Params = KernelParams<"matmul">;

/** Whether B's contiguous dim and batch stride are multiples of 4 (matmul_vec4's 16-byte loads). */
export function vec4Aligned(p: Params): boolean {
  const bDim = p.transB ? p.K : p.N;
  return bDim % 4 === 0 && p.strideB % 4 === 0;
}

/** The GEMV entry for an M = 1 product, or null when its vector dim is not aligned. */
export function gemvEntry(p: Params): "matmul_vec" | "matmul_vec_rows" | null {
  if (p.M !== 1) return null;
  if (!p.transB) return p.N % 4 === 0 && p.strideB % 4 === 0 ? "matmul_vec" : null;
  return p.K % 4 === 0 && p.strideA % 4 === 0 && p.strideB % 4 === 0 ? "matmul_vec_rows" : null;
}

const WV = 64; // threads (4 outputs each) along N in matmul_vec
/** matmul_vec4's shape: WX invocations × CV vec4 columns, R rows per workgroup (64 × 8 outputs). */
const VEC4 = { WX: 8, R: 8, CV: 2 };
/** From this many rows of A on, a B [N, K] is transposed into [K, N] before matmul_vec4 (whose
 *  column loads are then contiguous across invocations): the copy is 1/M of the product's work. */
const TRANSPOSE_MIN_M = 16;

const pack9 = (p: Params, transB: number, strideB: number, hasBias: number) =>
  pack(u(p.batch), u(p.M), u(p.N), u(p.K), u(p.transA), u(transB), u(p.strideA), u(strideB), u(hasBias));

export const MATMUL: KernelTable<"matmul"> = {
  matmul: (ctx, [a, b, bias], [out], p) => {
    if (p.batch === 0 || p.M === 0 || p.N === 0) return;
    const hasBias = bias ? p.hasBias : 0;
    const params = pack9(p, p.transB, p.strideB, hasBias);
    const trans = { TRANS_A: p.transA ? 1 : 0, TRANS_B: p.transB ? 1 : 0 };
    const buffers = [a!, b!, bias ?? ctx.dummy, out];
    const t = ctx.tuning;
    const autocast = ctx.features.shaderF16 && isAutocast();
    if (p.dtypeB === 1 && autocast) {
      // an f16 copy autocast kept for the backward, read as it is by the f16 product
      ctx.launch("matmul_f16_half", "matmul_f16_half", buffers, params, [Math.ceil(p.N / 64), Math.ceil(p.M / 64), p.batch], trans);
      return;
    }
    if (p.dtypeB) {
      ctx.launch("matmul_half", "matmul_half", buffers, params, [Math.ceil(p.N / 32), Math.ceil(p.M / 32), p.batch], { ...trans, DTYPE_B: p.dtypeB });
      return;
    }
    const gemv = t.gemv > 0 && !autocast ? gemvEntry(p) : null;
    const tiles = [Math.ceil(p.N / 64), Math.ceil(p.M / 64), p.batch];
    if (gemv === "matmul_vec") {
      ctx.launch("matmul", gemv, buffers, params, [Math.ceil(p.N / (4 * WV)), 1, p.batch], { ...trans, WV, KS: t.gemv });
    } else if (gemv === "matmul_vec_rows") {
      const [x, y] = grid1d(Math.ceil(p.N / 4), 1);
      ctx.launch("matmul", gemv, buffers, params, [x, y, p.batch], { ...trans, RW: t.rowThreads });
    } else if (autocast || (t.f16 && ctx.features.shaderF16)) {
      ctx.launch("matmul_f16", "matmul_f16_tiled", buffers, params, tiles, trans);
    } else if (t.matmul === "matmul_tiled") {
      ctx.launch("matmul", "matmul_tiled", buffers, params, tiles, trans);
    } else if (p.transB && p.M >= TRANSPOSE_MIN_M && p.N % 4 === 0) {
      const bt = transposeB(ctx, b!, p);
      const strideB = p.strideB === 0 ? 0 : p.K * p.N;
      const grid = [Math.ceil(p.N / 64), Math.ceil(p.M / VEC4.R), p.batch];
      ctx.launch("matmul", "matmul_vec4", [a!, bt, bias ?? ctx.dummy, out], pack9(p, 0, strideB, hasBias), grid, { ...trans, TRANS_B: 0, ...VEC4 });
    } else if (vec4Aligned(p)) {
      ctx.launch("matmul", "matmul_vec4", buffers, params, [Math.ceil(p.N / 64), Math.ceil(p.M / VEC4.R), p.batch], { ...trans, ...VEC4 });
    } else { // 8×8 invocations × 4×4 outputs
      ctx.launch("matmul", "matmul", buffers, params, [Math.ceil(p.N / 32), Math.ceil(p.M / 32), p.batch], trans);
    }
  },
};

/** Copies each B[b] [N, K] (one when strideB = 0) into a scratch [K, N] with the copy kernel. */
function transposeB(ctx: KernelContext, b: GpuBuffer, p: Params): GpuBuffer {
  const batches = p.strideB === 0 ? 1 : p.batch;
  const n = batches * p.K * p.N;
  const bt = ctx.temp(n * 4); // [batches, K, N]
  const dims = [u(batches), u(p.K), u(p.N), u(1), u(1), u(1)];
  const strides = [i(p.strideB), i(1), i(p.K), i(0), i(0), i(0)];
  ctx.launch("copy", "copy", [b, bt], pack(u(n), u(3), i(0), ...dims, ...strides), grid1d(n, 256));
  return bt;
}
