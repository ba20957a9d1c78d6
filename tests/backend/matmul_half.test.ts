// Conformance of matmul with a 16-bit B (dtypeB f16 / bf16: frozen weights) and of embedding from a
// 16-bit table, on every backend (wasm on its native BLAS when present, wasm with KILN_BLAS=off,
// WebGPU): against the float64 oracle run on B's widened values, so the only error allowed is f32
// rounding in the sums. Odd sizes (odd element counts end mid-word), all transposes, bias, batch
// strides that start a matrix mid-word, and products big enough to be split over threads (and to
// take the BLAS path, which widens B block by block).
import { describe, expect, test } from "bun:test";
import type { Backend } from "../../src/backend/backend.ts";
import type { KernelParams } from "../../src/backend/kernels.ts";
import { bufferBytes } from "../../src/tensor/dtype.ts";
import { bf16ArrayToF32, f16ArrayToF32, f32ArrayToBf16, f32ArrayToF16 } from "../../src/tensor/half.ts";
import { WASM_NO_BLAS, backendNames, getBackend } from "../backends.ts";
import { ints, reference, seedOf, uniform } from "./harness.ts";

const DTYPES = [["f16", 1], ["bf16", 2]] as const;

/** 16-bit bits of v and the f32 values they hold. */
function half(v: Float32Array, dt: "f16" | "bf16"): { bits: Uint16Array; values: Float32Array } {
  const bits = dt === "f16" ? f32ArrayToF16(v) : f32ArrayToBf16(v);
  return { bits, values: dt === "f16" ? f16ArrayToF32(bits) : bf16ArrayToF32(bits) };
}

async function run(backend: Backend, kernel: "matmul" | "embedding", inputs: (Float32Array | Int32Array | Uint16Array | null)[], outCount: number, params: KernelParams<"matmul"> | KernelParams<"embedding">): Promise<Float32Array> {
  const held = inputs.map((x) => {
    if (!x) return null;
    const buf = backend.alloc(x instanceof Uint16Array ? bufferBytes(x.length, "bf16") : x.byteLength);
    backend.upload(buf, x);
    return buf;
  });
  const out = backend.alloc(outCount * 4);
  try {
    backend.upload(out, new Float32Array(outCount).fill(NaN));
    backend.run(kernel, held, [out], params as never);
    return new Float32Array(await backend.download(out, outCount * 4));
  } finally {
    for (const b of [...held, out]) if (b) backend.free(b);
  }
}

// [batch, M, N, K]: odd sizes, the vector·matrix rows (M <= 3), and products split over threads
const SHAPES: [number, number, number, number][] = [
  [1, 1, 1, 1], [1, 3, 7, 5], [1, 7, 33, 65], [2, 33, 17, 9], [1, 65, 127, 33], [3, 13, 1, 31], [1, 1, 65, 127],
  [1, 2, 301, 99], [1, 128, 384, 768], [1, 301, 257, 99],
];

describe.each([...backendNames, WASM_NO_BLAS])("16-bit B on %s", (name) => {
  for (const [dt, dtypeB] of DTYPES) {
    test(`matmul with ${dt} B, every transpose, bias and batch strides, equals f64 on the widened values`, async () => {
      const backend = await getBackend(name);
      for (const [batch, M, N, K] of SHAPES) {
        for (const [transA, transB] of [[0, 0], [0, 1], [1, 0], [1, 1]]) {
          const hasBias = (transA + transB + M) % 2;
          const s = (t: string) => seedOf("matmul-half", dt, batch, M, N, K, transA, transB, t);
          const a = uniform(batch * M * K, s("a"));
          const b = half(uniform(batch * K * N, s("b"), -2, 2), dt);
          const bias = hasBias ? uniform(N, s("bias")) : null;
          const p = { batch, M, N, K, transA, transB, strideA: M * K, strideB: K * N, hasBias, dtypeB };
          const got = await run(backend, "matmul", [a, b.bits, bias], batch * M * N, p);
          const [want] = reference("matmul", [a, b.values, bias], [batch * M * N], p);
          expect(got).toBeAllClose(want, { atol: 4e-6 * Math.sqrt(K), rtol: 1e-5 });
        }
      }
      // one B broadcast over the batch (a frozen weight under batched activations)
      const [batch, M, N, K] = [3, 17, 33, 65];
      const a = uniform(batch * M * K, seedOf("matmul-half-bcast", dt, "a"));
      const w = half(uniform(N * K, seedOf("matmul-half-bcast", dt, "w")), dt);
      const p = { batch, M, N, K, transA: 0, transB: 1, strideA: M * K, strideB: 0, hasBias: 0, dtypeB };
      const got = await run(backend, "matmul", [a, w.bits, null], batch * M * N, p);
      expect(got).toBeAllClose(reference("matmul", [a, w.values, null], [batch * M * N], p)[0], { atol: 4e-6 * Math.sqrt(K), rtol: 1e-5 });
    });

    test(`embedding from a ${dt} table widens rows exactly; out-of-range ids give zero rows`, async () => {
      const backend = await getBackend(name);
      for (const [n, V, C] of [[1, 1, 1], [7, 5, 3], [33, 65, 7], [64, 65, 32], [127, 10, 33]]) {
        const ids = ints(n, seedOf("embedding-half", dt, n, V, C), -2, V + 2);
        const w = half(uniform(V * C, seedOf("embedding-half", dt, n, V, C, "w"), -3, 3), dt);
        const got = await run(backend, "embedding", [ids, w.bits], n * C, { n, V, C, dtype: dtypeB });
        const [want] = reference("embedding", [ids, w.values], [n * C], { n, V, C });
        expect(got).toBeAllClose(want, { atol: 0, rtol: 0 });
      }
    });
  }
});
