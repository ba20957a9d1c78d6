// Matrix products: matmul (PyTorch torch.matmul semantics for rank >= 1, batch dims broadcast) and
// linear (y = x·Wᵀ + b for nn.Linear weights [out, in], or y = x·W + b for Hugging Face Conv1D
// weights [in, out]), both on the one `matmul` kernel with its transpose flags and fused bias.
// Each records whether it ran under autocast, so its backward products run in the same precision
// wherever backward() is called (torch.autocast's rule). The right operand (b, the weight w) may be
// 16-bit storage (f16/bf16 frozen weights): the kernel widens it as it reads, the arithmetic is f32,
// and such a weight takes no gradient (only x's, the frozen-Linear backward dX = g·W, flows).
// Under autocast on WebGPU the activations they keep for the backward are f16 copies
// (src/ops/autocast.ts).

import type { Tensor } from "../tensor/tensor.ts";
import { broadcastShapes, formatShape, sizeOf } from "../tensor/shape.ts";
import { record } from "../autograd/tape.ts";
import { isAutocast } from "../tensor/mode.ts";
import { alloc, backendOf, launch, view } from "./dispatch.ts";
import { checkFloat } from "./elementwise.ts";
import { halfGradError, isHalf } from "../tensor/dtype.ts";
import { CAST_DTYPES } from "../backend/kernels.ts";
import { saveForBackward } from "./autocast.ts";
import { expandRaw } from "./movement.ts";

export interface GemmOptions {
  transA?: boolean;
  transB?: boolean;
  bias?: Tensor | null;
}

/** a @ b with PyTorch's rules: 1-D operands are promoted, leading (batch) dims broadcast. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  backendOf("matmul", [a, b]);
  checkFloat("matmul", a);
  checkWeight("matmul", b);
  if (a.rank === 0 || b.rank === 0) throw new Error("[matmul] both operands need at least one dim");
  const a2 = a.rank === 1 ? view(a, [1, a.shape[0]]) : a;
  const b2 = b.rank === 1 ? view(b, [b.shape[0], 1]) : b;
  const out = batchedGemm("matmul", a2, b2, {});
  if (a2 !== a) a2.dispose();
  if (b2 !== b) b2.dispose();
  let shape = out.shape;
  if (a.rank === 1) shape = [...shape.slice(0, -2), shape[shape.length - 1]];
  if (b.rank === 1) shape = shape.slice(0, -1);
  const result = shape === out.shape ? out : squeezeOwned(out, shape);
  return record(result, "matmul", [a, b], { a: saveForBackward(a, [a, b]), b: saveForBackward(b, [a, b]), autocast: isAutocast() });
}

/**
 * A fully connected layer over the last dim of x. `layout` says how w is stored:
 * "out_in" ([out, in], torch.nn.Linear, y = x·Wᵀ + b) or "in_out" ([in, out], HF Conv1D, y = x·W + b).
 */
export function linear(x: Tensor, w: Tensor, bias: Tensor | null = null, layout: "out_in" | "in_out" = "out_in"): Tensor {
  const backend = backendOf("linear", [x, w, bias]);
  checkFloat("linear", x);
  checkWeight("linear", w);
  if (w.rank !== 2) throw new Error(`[linear] weight must be 2-D, got ${w.describe()}`);
  const [inF, outF] = layout === "out_in" ? [w.shape[1], w.shape[0]] : [w.shape[0], w.shape[1]];
  const K = x.shape[x.rank - 1];
  if (K !== inF) throw new Error(`[linear] input features ${K} of ${x.describe()} differ from weight ${w.describe()} (${inF})`);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== outF)) {
    throw new Error(`[linear] bias ${bias.describe()} should be [${outF}]`);
  }
  const M = x.size / K;
  const out = alloc(backend, [...x.shape.slice(0, -1), outF]); // [..., out]
  gemm(x, w, out, { batch: 1, M, N: outF, K, transA: false, transB: layout === "out_in", strideA: 0, strideB: 0, bias });
  return record(out, "linear", [x, w, bias], { x: saveForBackward(x, [x, w, bias]), w, hasBias: !!bias, wLayout: layout, autocast: isAutocast() });
}

/**
 * The 2-D (or batched) product behind matmul and the gradient rules: a is [..., M, K] (or
 * [..., K, M] with transA), b is [..., K, N] (or [..., N, K] with transB). When b is 2-D the batch
 * dims of a are folded into M (one big GEMM).
 */
export function batchedGemm(op: string, a: Tensor, b: Tensor, { transA = false, transB = false, bias = null }: GemmOptions): Tensor {
  const backend = backendOf(op, [a, b, bias]);
  checkFloat(op, a);
  const [aRows, aCols] = a.shape.slice(-2);
  const [bRows, bCols] = b.shape.slice(-2);
  const M = transA ? aCols : aRows;
  const K = transA ? aRows : aCols;
  const Kb = transB ? bCols : bRows;
  const N = transB ? bRows : bCols;
  if (K !== Kb) {
    throw new Error(`[${op}] inner dims ${K} and ${Kb} differ (${formatShape(a.shape)} @ ${formatShape(b.shape)})`);
  }
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  if (batchB.length === 0 && !transA) {
    // fold a's batch into rows: [..., M, K] -> [(...·M), K]
    const out = alloc(backend, [...batchA, M, N]);
    gemm(a, b, out, { batch: 1, M: sizeOf(batchA) * M, N, K, transA: false, transB, strideA: 0, strideB: 0, bias });
    return out;
  }
  const batchShape = broadcastShapes(op, batchA, batchB);
  const batch = sizeOf(batchShape);
  const ea = sizeOf(batchA) === batch || sizeOf(batchA) === 1 ? a : expandRaw(a, [...batchShape, aRows, aCols]);
  const eb = sizeOf(batchB) === batch || sizeOf(batchB) === 1 ? b : expandRaw(b, [...batchShape, bRows, bCols]);
  const out = alloc(backend, [...batchShape, M, N]);
  gemm(ea, eb, out, {
    batch, M, N, K, transA, transB,
    strideA: sizeOf(ea.shape.slice(0, -2)) === 1 ? 0 : M * K,
    strideB: sizeOf(eb.shape.slice(0, -2)) === 1 ? 0 : K * N,
    bias,
  });
  if (ea !== a) ea.dispose();
  if (eb !== b) eb.dispose();
  return out;
}

interface GemmParams {
  batch: number; M: number; N: number; K: number;
  transA: boolean; transB: boolean; strideA: number; strideB: number;
  bias: Tensor | null;
}

/** One launch of the matmul kernel (B in its own dtype: f32, or 16-bit widened by the kernel). */
export function gemm(a: Tensor, b: Tensor, out: Tensor, p: GemmParams): void {
  launch("matmul", [a, b, p.bias], [out], {
    batch: p.batch, M: p.M, N: p.N, K: p.K,
    transA: p.transA ? 1 : 0, transB: p.transB ? 1 : 0,
    strideA: p.strideA, strideB: p.strideB, hasBias: p.bias ? 1 : 0, dtypeB: dtypeCode(b),
  });
}

/** The matmul kernel's dtypeB for B = t (0 f32; 1 f16, 2 bf16). */
export function dtypeCode(t: Tensor): number {
  return Math.max(0, CAST_DTYPES.indexOf(t.dtype as (typeof CAST_DTYPES)[number]));
}

/** A right operand / weight: f32, or 16-bit storage that does not ask for a gradient. */
function checkWeight(op: string, w: Tensor): void {
  if (!isHalf(w.dtype)) return checkFloat(op, w);
  if (w.requiresGrad) throw halfGradError(op, w.describe());
}

function squeezeOwned(t: Tensor, shape: readonly number[]): Tensor {
  const v = view(t, shape);
  t.dispose();
  return v;
}
