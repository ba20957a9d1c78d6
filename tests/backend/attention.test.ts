// Conformance of the fused attention kernels on every backend: causal and not, grouped-query
// heads (H = 4, Hkv = 2 and 1), KV-cache decode (T = 1, S = 37) and chunked prefill (S > T),
// odd head dims, the training shape B = 12, T = 64, H = 4, D = 32, and T > 64. On wasm both paths
// run: the tiled one (T ≥ 6: panels of 6 query rows, head dims in strips of 8, 5–7 or ≤ 4 wide)
// and the row one (T < 6, and a head too long for the tiled scratch: S = 2100, D = 64; its
// backward works in blocks of 32 query rows).
import { describe, expect, test } from "bun:test";
import { backendNames, getBackend } from "../backends.ts";
import { expectKernel, reference, runKernel, seedOf, uniform } from "./harness.ts";

// [B, T, S, H, Hkv, D]
const SHAPES: [number, number, number, number, number, number][] = [
  [1, 1, 1, 1, 1, 1],
  [1, 3, 3, 1, 1, 3],
  [2, 7, 7, 4, 2, 8],
  [1, 1, 37, 4, 2, 32], // decode
  [2, 5, 13, 4, 1, 7], // prefill of 5 tokens after 8 cached
  [1, 33, 33, 2, 2, 33],
  [12, 64, 64, 4, 4, 32], // training
  [2, 70, 90, 4, 2, 20], // prefill after 20 cached: query rows in three blocks of the wasm backward
  [2, 13, 13, 4, 2, 13], // panels of 6, 6 and 1 rows; a last strip of 5 head dims
  [1, 8, 2100, 1, 1, 64], // past the wasm tiled path's scratch: the row path with T ≥ 6
];

function qkv(B: number, T: number, S: number, H: number, Hkv: number, D: number, tag: string) {
  const s = (t: string) => seedOf(tag, B, T, S, H, Hkv, D, t);
  return { q: uniform(B * T * H * D, s("q"), -2, 2), k: uniform(B * S * Hkv * D, s("k"), -2, 2), v: uniform(B * S * Hkv * D, s("v")) };
}

describe.each(backendNames)("attention on %s", (name) => {
  for (const causal of [1, 0]) {
    test(`attention ${causal ? "causal" : "non-causal"} matches reference (out, lse)`, async () => {
      const backend = await getBackend(name);
      for (const [B, T, S, H, Hkv, D] of SHAPES) {
        const { q, k, v } = qkv(B, T, S, H, Hkv, D, "attention");
        const p = { B, T, S, H, Hkv, D, scale: 1 / Math.sqrt(D), causal };
        await expectKernel(backend, "attention", [q, k, v], [B * T * H * D, B * H * T], p, { atol: 1e-5, rtol: 1e-5 });
      }
    });

    test(`attention_backward ${causal ? "causal" : "non-causal"} matches reference (dq, dk, dv)`, async () => {
      const backend = await getBackend(name);
      for (const [B, T, S, H, Hkv, D] of SHAPES) {
        const { q, k, v } = qkv(B, T, S, H, Hkv, D, "attention_backward");
        const p = { B, T, S, H, Hkv, D, scale: 1 / Math.sqrt(D), causal };
        const [out, lse] = reference("attention", [q, k, v], [B * T * H * D, B * H * T], p).map((a) => Float32Array.from(a));
        const dout = uniform(B * T * H * D, seedOf("attention_backward", B, T, S, H, Hkv, D, causal, "dout"));
        const tol = { atol: 2e-5 * Math.sqrt(T * (H / Hkv)), rtol: 1e-4 };
        await expectKernel(backend, "attention_backward", [dout, q, k, v, out, lse], [q.length, k.length, v.length], p, tol);
      }
    });
  }
});

// Strided views (kernels.ts qRow/kvRow/qOff/kOff/vOff): q, k, v read out of wider rows, as the
// q/k/v columns of a fused projection's output, and dq, dk, dv written into such rows with the
// other columns kept (each output starts with sentinel values the reference keeps too).
// [B, T, S, H, Hkv, D, extra floats per q row, per kv row]
const STRIDED: [number, number, number, number, number, number, number, number][] = [
  [1, 3, 3, 1, 1, 3, 2, 5],
  [2, 7, 7, 4, 2, 8, 16, 16], // rows of (H + 2·Hkv)·D = 64 floats, as a fused projection
  [1, 1, 37, 4, 2, 32, 1, 3], // decode
  [2, 5, 13, 4, 1, 7, 3, 0], // prefill after 8 cached
  [2, 13, 13, 4, 2, 13, 5, 7], // tiled: panels of 6, 6 and 1 rows
  [3, 64, 64, 4, 4, 32, 256, 256], // training, GPT layout: rows of 3·H·D
  [2, 70, 90, 4, 2, 20, 4, 40], // the wasm backward's row blocks
  [1, 8, 2100, 1, 1, 64, 3, 9], // the wasm row path
];

function strided(B: number, T: number, S: number, H: number, Hkv: number, D: number, qPad: number, kvPad: number, causal: number) {
  const qRow = H * D + qPad, kvRow = Hkv * D + kvPad;
  const qOff = Math.min(qPad, 3), kOff = Math.min(kvPad, 1), vOff = kvPad; // k and v columns at the row's start and end
  const s = (t: string) => seedOf("strided", B, T, S, H, Hkv, D, qPad, kvPad, t);
  const p = { B, T, S, H, Hkv, D, scale: 1 / Math.sqrt(D), causal, qRow, kvRow, qOff, kOff, vOff };
  const qn = B * T * qRow + qOff, kn = B * S * kvRow + vOff;
  return { p, q: uniform(qn, s("q"), -2, 2), k: uniform(kn, s("k"), -2, 2), v: uniform(kn, s("v")), qn, kn };
}

describe.each(backendNames)("attention on strided q, k, v on %s", (name) => {
  for (const causal of [1, 0]) {
    test(`attention ${causal ? "causal" : "non-causal"} reads strided views`, async () => {
      const backend = await getBackend(name);
      for (const [B, T, S, H, Hkv, D, qPad, kvPad] of STRIDED) {
        const { p, q, k, v } = strided(B, T, S, H, Hkv, D, qPad, kvPad, causal);
        await expectKernel(backend, "attention", [q, k, v], [B * T * H * D, B * H * T], p, { atol: 1e-5, rtol: 1e-5 });
      }
    });

    test(`attention_backward ${causal ? "causal" : "non-causal"} writes dq, dk, dv into strided views only`, async () => {
      const backend = await getBackend(name);
      for (const [B, T, S, H, Hkv, D, qPad, kvPad] of STRIDED) {
        const { p, q, k, v, qn, kn } = strided(B, T, S, H, Hkv, D, qPad, kvPad, causal);
        const [out, lse] = reference("attention", [q, k, v], [B * T * H * D, B * H * T], p).map((a) => Float32Array.from(a));
        const dout = uniform(B * T * H * D, seedOf("strided dout", B, T, S, causal));
        const sentinels = [uniform(qn, 1, 5, 6), uniform(kn, 2, 5, 6), uniform(kn, 3, 5, 6)];
        const tol = { atol: 2e-5 * Math.sqrt(T * (H / Hkv)), rtol: 1e-4 };
        await expectKernel(backend, "attention_backward", [dout, q, k, v, out, lse], sentinels, p, tol);
      }
    });
  }
});

test("attention with head dim 0 on wasm: scores are 0, so lse = log of the visible key count (not the tiled path)", async () => {
  const backend = await getBackend("wasm");
  const [B, T, S, H, Hkv, D] = [1, 8, 10, 2, 1, 0];
  const p = { B, T, S, H, Hkv, D, scale: 1, causal: 1 };
  const [, lse] = await runKernel(backend, "attention", [new Float32Array(0), new Float32Array(0), new Float32Array(0)], [0, B * H * T], p);
  const want = Array.from({ length: H * T }, (_, i) => Math.log(Math.min(S, (i % T) + S - T + 1)));
  expect(lse).toBeAllClose(want, { atol: 1e-6, rtol: 1e-6 });
});
