// The matrix-product front end (src/ops/matmul.ts): matmul with torch.matmul's rules (2-D, batched,
// batch broadcast [2,3,M,K]@[K,N], [M,K]@[2,K,N], [2,1,M,K]@[3,K,N], 1-D operands promoted and
// squeezed) and linear in both weight layouts ("out_in" nn.Linear, "in_out" HF Conv1D) with and
// without bias. Forward against plain float64 JS; gradients against finite differences.
import { describe, expect, test } from "bun:test";
import * as k from "../../src/index.ts";
import { atBroadcast, backendNames, broadcastShape, expectClose, expectGrad, indices, noLeaks, onBackend, rand, sizeOf } from "./helpers.ts";

/** torch.matmul in float64: promote 1-D operands, broadcast batch dims, squeeze the promoted dims. */
function hostMatmul(a: Float64Array, aShape: number[], b: Float64Array, bShape: number[]): { shape: number[]; out: Float64Array } {
  const a2 = aShape.length === 1 ? [1, aShape[0]] : aShape;
  const b2 = bShape.length === 1 ? [bShape[0], 1] : bShape;
  const [M, K] = a2.slice(-2);
  const N = b2[b2.length - 1];
  const batch = broadcastShape(a2.slice(0, -2), b2.slice(0, -2));
  const out = new Float64Array(sizeOf(batch) * M * N);
  let o = 0;
  for (const bi of indices(batch)) {
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let kk = 0; kk < K; kk++) s += atBroadcast(a, a2, [...bi, m, kk]) * atBroadcast(b, b2, [...bi, kk, n]);
        out[o++] = s;
      }
    }
  }
  let shape = [...batch, M, N];
  if (aShape.length === 1) shape = [...shape.slice(0, -2), N];
  if (bShape.length === 1) shape = shape.slice(0, -1);
  return { shape, out };
}

const MATMULS: [string, number[], number[]][] = [
  ["2-D", [5, 7], [7, 3]],
  ["batched", [2, 5, 7], [2, 7, 3]],
  ["batch broadcast [2,3,M,K] @ [K,N]", [2, 3, 4, 5], [5, 3]],
  ["batch broadcast [M,K] @ [2,K,N]", [4, 5], [2, 5, 3]],
  ["batch broadcast [2,1,M,K] @ [3,K,N]", [2, 1, 4, 5], [3, 5, 2]],
  ["batch broadcast [1,M,K] @ [2,K,N]", [1, 3, 4], [2, 4, 5]],
  ["1-D @ 2-D", [6], [6, 4]],
  ["2-D @ 1-D", [3, 6], [6]],
  ["1-D @ 1-D", [6], [6]],
  ["1-D @ batched", [5], [2, 5, 3]],
  ["batched @ 1-D", [2, 3, 5], [5]],
  ["odd sizes", [3, 17, 13], [13, 9]],
];

describe.each(backendNames)("matmul on %s", (name) => {
  onBackend(name);

  describe("matmul", () => {
    test.each(MATMULS)("matmul %s matches float64", async (_, aShape, bShape) => {
      await noLeaks(async () => {
        const a = rand(aShape, `matmul-a-${aShape}-${bShape}`);
        const b = rand(bShape, `matmul-b-${aShape}-${bShape}`);
        const want = hostMatmul(a.v, aShape, b.v, bShape);
        await expectClose(k.matmul(a.t, b.t), want.shape, want.out, { atol: 1e-5, rtol: 1e-5 });
        await expectClose(a.t.matmul(b.t), want.shape, want.out, { atol: 1e-5, rtol: 1e-5 });
      });
    });

    test.each(MATMULS)("matmul %s: gradient matches finite differences", async (_, aShape, bShape) => {
      await noLeaks(async () => {
        const a = rand(aShape, `matmul-ga-${aShape}-${bShape}`).t;
        const b = rand(bShape, `matmul-gb-${aShape}-${bShape}`).t;
        await expectGrad((x, y) => k.matmul(x, y), [a, b], { tol: 2e-3, mutate: ["matmul"] });
      });
    });

    test("matmul with batch broadcast at GPT-like sizes matches float64", async () => {
      await noLeaks(async () => {
        for (const [aShape, bShape] of [[[2, 3, 40, 70], [70, 50]], [[64, 96], [3, 96, 33]], [[2, 1, 65, 31], [3, 31, 64]]]) {
          const a = rand(aShape, `matmul-big-a-${aShape}`);
          const b = rand(bShape, `matmul-big-b-${bShape}`);
          const want = hostMatmul(a.v, aShape, b.v, bShape);
          await expectClose(k.matmul(a.t, b.t), want.shape, want.out, { atol: 1e-4, rtol: 1e-4 });
        }
      });
    });

    test("mismatched inner dims and 0-d operands are clear errors", () => {
      const a = k.zeros([2, 3]);
      const b = k.zeros([4, 5]);
      const s = k.fromArray([1], []);
      expect(() => k.matmul(a, b)).toThrow(/\[matmul\] inner dims 3 and 4 differ/);
      expect(() => k.matmul(k.zeros([2, 2, 3]), k.zeros([3, 3, 4]))).toThrow(/\[matmul\] shapes \[2\] and \[3\] cannot be broadcast/);
      expect(() => k.matmul(s, a)).toThrow(/\[matmul\] both operands need at least one dim/);
      k.dispose([a, b, s]);
    });
  });

  describe("linear", () => {
    // x shape, in, out, layout, bias
    const LINEARS: [string, number[], number, number, "out_in" | "in_out", boolean][] = [
      ["out_in with bias", [2, 3, 5], 5, 4, "out_in", true],
      ["out_in without bias", [7, 5], 5, 3, "out_in", false],
      ["in_out with bias", [2, 3, 5], 5, 4, "in_out", true],
      ["in_out without bias", [5], 5, 6, "in_out", false],
      ["out_in, odd sizes", [3, 11], 11, 13, "out_in", true],
    ];

    test.each(LINEARS)("linear %s matches float64", async (_, xShape, inF, outF, layout, hasBias) => {
      await noLeaks(async () => {
        const x = rand(xShape, `linear-x-${_}`);
        const w = rand(layout === "out_in" ? [outF, inF] : [inF, outF], `linear-w-${_}`);
        const bias = hasBias ? rand([outF], `linear-b-${_}`) : null;
        const rows = x.v.length / inF;
        const want = new Float64Array(rows * outF);
        for (let r = 0; r < rows; r++) {
          for (let o = 0; o < outF; o++) {
            let s = bias ? bias.v[o] : 0;
            for (let i = 0; i < inF; i++) s += x.v[r * inF + i] * (layout === "out_in" ? w.v[o * inF + i] : w.v[i * outF + o]);
            want[r * outF + o] = s;
          }
        }
        await expectClose(k.linear(x.t, w.t, bias?.t ?? null, layout), [...xShape.slice(0, -1), outF], want);
      });
    });

    test.each(LINEARS)("linear %s: gradient matches finite differences", async (_, xShape, inF, outF, layout, hasBias) => {
      await noLeaks(async () => {
        const x = rand(xShape, `linear-gx-${_}`).t;
        const w = rand(layout === "out_in" ? [outF, inF] : [inF, outF], `linear-gw-${_}`).t;
        const inputs = hasBias ? [x, w, rand([outF], `linear-gb-${_}`).t] : [x, w];
        await expectGrad((xx, ww, bb) => k.linear(xx, ww, bb ?? null, layout), inputs, { tol: 2e-3, mutate: ["linear"] });
      });
    });

    test("linear shape errors are clear", () => {
      const x = k.zeros([2, 5]);
      const w = k.zeros([4, 5]);
      expect(() => k.linear(x, k.zeros([5, 4]))).toThrow(/\[linear\] input features 5 of .* differ from weight .*f32\[5, 4\] \(4\)/);
      expect(() => k.linear(x, w, k.zeros([5]))).toThrow(/\[linear\] bias .*f32\[5\] should be \[4\]/);
      expect(() => k.linear(x, k.zeros([20]))).toThrow(/\[linear\] weight must be 2-D/);
      k.dispose([x, w]);
    });
  });
});
