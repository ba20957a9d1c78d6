// The normalization front end (src/ops/norm.ts): layerNorm (x − mean)/sqrt(var + eps)·w + b with the
// biased variance, and rmsNorm x/sqrt(mean(x²) + eps)·w, over the last dim of 2-D and 3-D inputs.
// Forward against plain float64 JS; gradients for x, weight and bias against finite differences.
import { describe, expect, test } from "bun:test";
import * as k from "../../src/index.ts";
import { backendNames, expectClose, expectGrad, hostLanes, noLeaks, onBackend, rand } from "./helpers.ts";

const SHAPES: number[][] = [[4, 7], [2, 3, 16], [1, 33]];

function layerNormRef(x: Float64Array, shape: number[], w: Float64Array, b: Float64Array, eps: number): Float64Array {
  return hostLanes(x, shape, shape.length - 1, (lane) => {
    const mean = lane.reduce((s, v) => s + v, 0) / lane.length;
    const variance = lane.reduce((s, v) => s + (v - mean) ** 2, 0) / lane.length;
    const rstd = 1 / Math.sqrt(variance + eps);
    return lane.map((v, i) => (v - mean) * rstd * w[i] + b[i]);
  });
}

function rmsNormRef(x: Float64Array, shape: number[], w: Float64Array, eps: number): Float64Array {
  return hostLanes(x, shape, shape.length - 1, (lane) => {
    const rstd = 1 / Math.sqrt(lane.reduce((s, v) => s + v * v, 0) / lane.length + eps);
    return lane.map((v, i) => v * rstd * w[i]);
  });
}

describe.each(backendNames)("norm on %s", (name) => {
  onBackend(name);

  describe("layer_norm", () => {
    test.each(SHAPES)("layerNorm over the last dim of %p matches float64", async (...shape) => {
      await noLeaks(async () => {
        const C = shape[shape.length - 1];
        const x = rand(shape, `ln-x-${shape}`, -2, 3);
        const w = rand([C], `ln-w-${shape}`, 0.5, 1.5);
        const b = rand([C], `ln-b-${shape}`);
        await expectClose(k.layerNorm(x.t, w.t, b.t), shape, layerNormRef(x.v, shape, w.v, b.v, 1e-5), { atol: 1e-5, rtol: 1e-5 });
        await expectClose(k.layerNorm(x.t, w.t, b.t, 0.5), shape, layerNormRef(x.v, shape, w.v, b.v, 0.5), { atol: 1e-5, rtol: 1e-5 });
      });
    });

    test.each(SHAPES)("layerNorm over %p: gradients of x, weight, bias match finite differences", async (...shape) => {
      await noLeaks(async () => {
        const C = shape[shape.length - 1];
        const x = rand(shape, `ln-gx-${shape}`, -2, 2).t;
        const w = rand([C], `ln-gw-${shape}`, 0.5, 1.5).t;
        const b = rand([C], `ln-gb-${shape}`).t;
        await expectGrad((xx, ww, bb) => k.layerNorm(xx, ww, bb), [x, w, b], { tol: 2e-3, mutate: ["layer_norm"] });
      });
    });

    test("a weight that does not fit the last dim is a clear error", () => {
      k.scope(() => {
        expect(() => k.layerNorm(k.zeros([2, 4]), k.ones([3]), k.zeros([4]))).toThrow(/\[layer_norm\] .*f32\[3\] should be \[4\] \(the last dim of x\)/);
      });
    });
  });

  describe("rms_norm", () => {
    test.each(SHAPES)("rmsNorm over the last dim of %p matches float64", async (...shape) => {
      await noLeaks(async () => {
        const C = shape[shape.length - 1];
        const x = rand(shape, `rms-x-${shape}`, -2, 3);
        const w = rand([C], `rms-w-${shape}`, 0.5, 1.5);
        await expectClose(k.rmsNorm(x.t, w.t), shape, rmsNormRef(x.v, shape, w.v, 1e-6), { atol: 1e-5, rtol: 1e-5 });
        await expectClose(k.rmsNorm(x.t, w.t, 0.25), shape, rmsNormRef(x.v, shape, w.v, 0.25), { atol: 1e-5, rtol: 1e-5 });
      });
    });

    test.each(SHAPES)("rmsNorm over %p: gradients of x and weight match finite differences", async (...shape) => {
      await noLeaks(async () => {
        const C = shape[shape.length - 1];
        const x = rand(shape, `rms-gx-${shape}`, -2, 2).t;
        const w = rand([C], `rms-gw-${shape}`, 0.5, 1.5).t;
        await expectGrad((xx, ww) => k.rmsNorm(xx, ww), [x, w], { tol: 2e-3, mutate: ["rms_norm"] });
      });
    });

    test("a weight that does not fit the last dim is a clear error", () => {
      k.scope(() => {
        expect(() => k.rmsNorm(k.zeros([2, 4]), k.ones([4, 1]))).toThrow(/\[rms_norm\] .* should be \[4\]/);
      });
    });
  });
});
