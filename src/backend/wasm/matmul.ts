// WASM host side of the kernel "matmul": resolves the call into one or more calls of the export
// matmul_f32 (rows [r0, r1) × columns [n0, n1) each). Not a shape checker: src/ops has checked.
// Kernel semantics: src/backend/kernels.ts "matmul"; kernel: wasm/assembly/matmul.ts.

import type { KernelParams } from "../kernels.ts";
import type { WasmRuntime } from "./module.ts";

/** The matmul_f32 export (wasm/assembly/matmul.ts): pointers are byte offsets into the shared memory. */
export type MatmulF32 = (
  a: number, b: number, bias: number, out: number,
  batch: number, M: number, N: number, K: number, transA: number, transB: number,
  strideA: number, strideB: number, hasBias: number,
  r0: number, r1: number, n0: number, n1: number, scratch: number,
) => void;

/** out = A·B (+ bias) for kernel "matmul"; a, b, bias (0 = none) and out are byte offsets. */
export function runMatmul(rt: WasmRuntime, a: number, b: number, bias: number, out: number, p: KernelParams<"matmul">): void {
  const matmulF32 = (rt.exports as unknown as { matmul_f32: MatmulF32 }).matmul_f32;
  const hasBias = p.hasBias && bias !== 0 ? 1 : 0;
  matmulF32(a, b, bias, out, p.batch, p.M, p.N, p.K, p.transA, p.transB, p.strideA, p.strideB, hasBias,
    0, p.batch * p.M, 0, p.N, 0);
}
