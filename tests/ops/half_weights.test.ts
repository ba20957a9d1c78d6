// 16-bit frozen weights at the op level, on every backend: linear (both layouts, bias), matmul and
// embedding with an f16/bf16 weight give what the same ops give on an f32 copy of the weight's
// (rounded) values, forward and the frozen-layer backward (dX flows, no dW); a 16-bit weight that
// asks for a gradient is an error naming the op.
import { describe, expect, test } from "bun:test";
import * as k from "../../src/index.ts";
import { backendNames, noLeaks, onBackend, rand, seedOf, uniform } from "./helpers.ts";

async function close(a: k.Tensor, b: k.Tensor, atol = 1e-6): Promise<void> {
  expect([...a.shape]).toEqual([...b.shape]);
  expect(await a.data()).toBeAllClose(await b.data(), { atol, rtol: 1e-6 });
}

describe.each(backendNames)("16-bit weights on %s", (name) => {
  onBackend(name);

  for (const dt of ["f16", "bf16"] as const) {
    test(`${dt}: linear forward and dX equal the f32 layer holding the rounded weights`, async () => {
      await noLeaks(async () => {
        for (const layout of ["out_in", "in_out"] as const) {
          const [B, T, inF, outF] = [2, 5, 33, 17];
          const wShape = layout === "out_in" ? [outF, inF] : [inF, outF];
          const w16 = k.fromArray(uniform(inF * outF, seedOf("hw", dt, layout)), wShape, { dtype: dt });
          const w32 = w16.to("f32");
          const bias = rand([outF], `hw-bias-${dt}`).t;
          const x1 = k.fromArray((await rand([B, T, inF], `hw-x-${dt}`).t.data()) as Float32Array, [B, T, inF], { requiresGrad: true });
          const x2 = k.fromArray((await x1.data()) as Float32Array, [B, T, inF], { requiresGrad: true });
          const y16 = k.linear(x1, w16, bias, layout);
          const y32 = k.linear(x2, w32, bias, layout);
          await close(y16, y32);
          const g = rand([B, T, outF], `hw-g-${dt}`).t;
          y16.mul(g).sum().backward();
          y32.mul(g).sum().backward();
          await close(x1.grad!, x2.grad!);
          expect(w16.grad).toBeNull();
        }
      });
    });

    test(`${dt}: matmul with a 16-bit right operand and embedding from a 16-bit table`, async () => {
      await noLeaks(async () => {
        const a = k.fromArray(uniform(3 * 4 * 9, seedOf("hm-a", dt)), [3, 4, 9], { requiresGrad: true });
        const b16 = k.fromArray(uniform(9 * 7, seedOf("hm-b", dt)), [9, 7], { dtype: dt });
        const y = k.matmul(a, b16);
        await close(y, k.matmul(a.detach(), b16.to("f32")));
        y.sum().backward();
        const ones = k.fromArray(new Float32Array(3 * 4 * 7).fill(1), [3, 4, 7]);
        await close(a.grad!, k.matmul(ones, b16.to("f32").transpose()));
        const table = k.fromArray(uniform(11 * 6, seedOf("he-w", dt)), [11, 6], { dtype: dt });
        const ids = k.tensor(Int32Array.of(3, 0, 10, 3));
        const rows = k.embedding(ids, table);
        expect(rows.dtype).toBe("f32");
        expect(await rows.data()).toEqual(await k.embedding(ids, table.to("f32")).data());
      });
    });

    test(`${dt}: a 16-bit weight that requires grad is refused by name`, async () => {
      await noLeaks(async () => {
        const x = k.fromArray([1, 2, 3], [1, 3], { requiresGrad: true });
        // a cast of a trainable f32 tensor carries requiresGrad: the product refuses it
        const w = k.fromArray([1, 2, 3, 4, 5, 6], [2, 3], { requiresGrad: true }).to(dt);
        expect(() => k.linear(x, w)).toThrow(/\[linear\] .* requires grad: 16-bit tensors are frozen storage .* train it in f32/);
        expect(() => k.matmul(x, w.reshape(3, 2))).toThrow(/\[matmul\] .* requires grad/);
        expect(() => k.embedding(k.tensor(Int32Array.of(0)), w)).toThrow(/\[embedding\] .* requires grad/);
        // a 16-bit left operand is refused
        expect(() => k.matmul(k.fromArray([1, 2], [1, 2], { dtype: dt }), k.fromArray([1, 2], [2, 1]))).toThrow(/\[matmul\].*16-bit tensors are storage/);
      });
    });
  }
});
