// 16-bit storage tensors (f16, bf16) on every backend: creation rounds to nearest even on the host,
// data() widens exactly, .to(dtype) runs the cast kernel (same bits as the host), an odd count,
// .to(backend) keeps the bits, reshape is a view, and every op that cannot read 16-bit bytes
// refuses them with the message that says what does (never a silent misread). Gradients pass
// through a cast to an f32 source; a 16-bit tensor that asks for a gradient is an error.
import { describe, expect, test } from "bun:test";
import * as k from "../../src/index.ts";
import { bf16ArrayToF32, f16ArrayToF32, f32ArrayToBf16, f32ArrayToF16 } from "../../src/tensor/half.ts";
import { backendNames, noLeaks, onBackend, uniform, seedOf } from "../ops/helpers.ts";
import { getBackend } from "../backends.ts";

/** What the host says an f32 array becomes in dtype dt (round to nearest even, widened back). */
function rounded(v: Float32Array, dt: "f16" | "bf16"): Float32Array {
  return dt === "f16" ? f16ArrayToF32(f32ArrayToF16(v)) : bf16ArrayToF32(f32ArrayToBf16(v));
}

const HALF_MESSAGE = /16-bit tensors are storage for frozen weights: matmul\/linear and embedding read them; cast with \.to\('f32'\)/;

describe.each(backendNames)("16-bit tensors on %s", (name) => {
  const backend = onBackend(name);

  for (const dt of ["f16", "bf16"] as const) {
    test(`${dt}: creation rounds, data() widens, .to() casts both ways with the host's bits`, async () => {
      await noLeaks(async () => {
        const v = uniform(2 * 37, seedOf("half-tensor", dt), -300, 300); // odd inner dim, even count
        v[0] = 1 / 3;
        v[1] = 70000; // past f16's max: inf in f16, finite in bf16
        const t = k.fromArray(v, [2, 37], { dtype: dt });
        expect(t.dtype).toBe(dt);
        expect(t.storage.buffer.bytes).toBe(2 * 37 * 2);
        const want = rounded(v, dt);
        expect(await t.data()).toEqual(want);
        if (dt === "f16") expect((await t.data())[1]).toBe(Infinity);
        // on the device: f32 -> dt by the cast kernel equals the host's rounding
        const f = k.fromArray(v, [2, 37]);
        const viaKernel = f.to(dt);
        expect(viaKernel.dtype).toBe(dt);
        expect(await viaKernel.data()).toEqual(want);
        const back = viaKernel.to("f32");
        expect(back.dtype).toBe("f32");
        expect(await back.data()).toEqual(want);
        expect(f.to("f32")).toBe(f); // already f32: the tensor itself, as torch's .to
        // reshape is a view of the same 16-bit storage
        const r = t.reshape(37, 2);
        expect(r.dtype).toBe(dt);
        expect(await r.data()).toEqual(want);
      });
    });

    test(`${dt}: odd counts, full(), and a copy to another backend keep the values`, async () => {
      await noLeaks(async () => {
        const odd = k.fromArray([1.5, -2.25, 3], [3], { dtype: dt });
        expect(Array.from(await odd.data())).toEqual([1.5, -2.25, 3]);
        expect(Array.from(await odd.to("f32").data())).toEqual([1.5, -2.25, 3]);
        expect(Array.from(await k.full([5], 0.1, { dtype: dt }).data())).toEqual(Array.from(rounded(new Float32Array(5).fill(0.1), dt)));
        const wasm = await getBackend("wasm");
        const moved = await odd.to(wasm);
        expect(moved.dtype).toBe(dt);
        expect(Array.from(await moved.data())).toEqual([1.5, -2.25, 3]);
        if (moved !== odd) moved.dispose();
      });
    });

    test(`${dt}: ops that cannot read 16-bit refuse it by name`, async () => {
      await noLeaks(async () => {
        const h = k.fromArray([1, 2, 3, 4, 5, 6], [2, 3], { dtype: dt });
        const f = k.fromArray([1, 2, 3, 4, 5, 6], [2, 3]);
        expect(() => h.add(f)).toThrow(/\[add\] got #\d+ (f16|bf16)\[2, 3\]/);
        expect(() => f.mul(h)).toThrow(HALF_MESSAGE);
        expect(() => h.exp()).toThrow(HALF_MESSAGE);
        expect(() => h.softmax()).toThrow(/\[softmax\]/);
        expect(() => h.sum()).toThrow(HALF_MESSAGE);
        expect(() => h.transpose()).toThrow(/\[copy\].*16-bit tensors are storage/);
        expect(() => h.narrow(0, 0, 1)).toThrow(HALF_MESSAGE);
        expect(() => k.cat([h, h])).toThrow(/\[cat\].*16-bit tensors are storage/);
        expect(() => k.rmsNorm(h, f.narrow(0, 0, 1).reshape(3))).toThrow(HALF_MESSAGE);
        expect(() => k.fromArray([1], [1], { dtype: "i32" }).to(dt)).toThrow(/\[cast\] .*i32.*f32, f16, bf16/);
      });
    });

    test(`${dt}: gradients pass a cast back to the f32 source; a 16-bit tensor cannot require grad`, async () => {
      await noLeaks(async () => {
        const x = k.fromArray([0.5, -1.5, 2], [3], { requiresGrad: true });
        const y = x.to(dt).to("f32").mul(k.fromArray([1, 2, 3], [3])).sum();
        y.backward();
        expect(Array.from(await x.grad!.data())).toEqual([1, 2, 3]);
        expect(() => k.fromArray([1, 2], [2], { dtype: dt, requiresGrad: true })).toThrow(/requires grad: 16-bit tensors are frozen storage/);
        const h = k.fromArray([1, 2], [2], { dtype: dt });
        expect(() => h.requireGrad()).toThrow(/\[requireGrad\].*train it in f32 \(\.to\('f32'\)\) or freeze it/);
        expect(backend().name as string).toBe(name);
      });
    });
  }
});
