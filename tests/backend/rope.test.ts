// Conformance of rope and rope_backward on every backend: head dims with and without a SIMD tail
// in the half (D/2 = 1, 3, 4, 16, 17), positions offset as in KV-cache decoding, in-place use.
import { describe, expect, test } from "bun:test";
import { backendNames, getBackend } from "../backends.ts";
import { expectKernel, seedOf, uniform } from "./harness.ts";

// [B, T, H, D, offset]
const SHAPES: [number, number, number, number, number][] = [
  [1, 1, 1, 2, 0], [1, 3, 2, 6, 0], [2, 7, 3, 8, 5], [2, 33, 4, 32, 0], [1, 1, 4, 32, 2047], [3, 5, 2, 34, 100], [1, 65, 1, 64, 0],
];

describe.each(backendNames)("rope on %s", (name) => {
  for (const kernel of ["rope", "rope_backward"] as const) {
    test(`${kernel} matches reference`, async () => {
      const backend = await getBackend(name);
      for (const [B, T, H, D, offset] of SHAPES) {
        for (const theta of [10000, 500000]) {
          const x = uniform(B * T * H * D, seedOf(kernel, B, T, H, D, offset, theta));
          await expectKernel(backend, kernel, [x], [x.length], { B, T, H, D, theta, offset }, { atol: 2e-6, rtol: 1e-5 });
        }
      }
    });
  }

  test("rope works in place (out is x) and rope_backward undoes it", async () => {
    const backend = await getBackend(name);
    const [B, T, H, D] = [2, 5, 3, 12];
    const x = uniform(B * T * H * D, seedOf("rope-inplace"));
    const buf = backend.alloc(x.byteLength);
    backend.upload(buf, x);
    const p = { B, T, H, D, theta: 10000, offset: 3 };
    backend.run("rope", [buf], [buf], p);
    backend.run("rope_backward", [buf], [buf], p);
    const back = new Float32Array(await backend.download(buf));
    backend.free(buf);
    expect(back).toBeAllClose(x, { atol: 1e-6, rtol: 1e-6 });
  });
});
