// The attention front end (src/ops/attention.ts): fused scaled-dot-product attention on [B, T, H, D]
// (causal or not, grouped-query heads, S > T with the causal offset of KV-cache decoding, custom
// scale) and rotary embeddings (rotate-half, theta, position offset). Forward against plain
// float64 JS; gradients of q, k, v and x against finite differences; the shape errors.
import { describe, expect, test } from "bun:test";
import * as k from "../../src/index.ts";
import { backendNames, expectClose, expectGrad, noLeaks, onBackend, rand } from "./helpers.ts";

/** softmax(q·kᵀ·scale + mask)·v per (b, t, h); query t sits at position t + S − T when causal. */
function attentionRef(q: Float64Array, kk: Float64Array, v: Float64Array, [B, T, H, D]: number[], [S, Hkv]: number[], causal: boolean, scale: number): Float64Array {
  const out = new Float64Array(B * T * H * D);
  const group = H / Hkv;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < H; h++) {
        const kvh = Math.floor(h / group);
        const qo = ((b * T + t) * H + h) * D;
        const last = causal ? t + S - T : S - 1;
        const scores: number[] = [];
        for (let j = 0; j <= last; j++) {
          const ko = ((b * S + j) * Hkv + kvh) * D;
          let s = 0;
          for (let d = 0; d < D; d++) s += q[qo + d] * kk[ko + d];
          scores.push(s * scale);
        }
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((a, c) => a + c, 0);
        for (let j = 0; j <= last; j++) {
          const vo = ((b * S + j) * Hkv + kvh) * D;
          for (let d = 0; d < D; d++) out[qo + d] += (e[j] / z) * v[vo + d];
        }
      }
    }
  }
  return out;
}

/** rotate-half RoPE: θ = (offset + t)·theta^(−2i/D). */
function ropeRef(x: Float64Array, [B, T, H, D]: number[], theta: number, offset: number): Float64Array {
  const out = new Float64Array(x.length);
  const half = D / 2;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < H; h++) {
        const o = ((b * T + t) * H + h) * D;
        for (let i = 0; i < half; i++) {
          const angle = (offset + t) * Math.pow(theta, (-2 * i) / D);
          const c = Math.cos(angle), s = Math.sin(angle);
          out[o + i] = x[o + i] * c - x[o + i + half] * s;
          out[o + i + half] = x[o + i + half] * c + x[o + i] * s;
        }
      }
    }
  }
  return out;
}

// name, q shape [B, T, H, D], [S, Hkv], causal, scale (undefined: 1/sqrt(D))
const CASES: [string, number[], number[], boolean, number | undefined][] = [
  ["non-causal, S = T", [2, 5, 2, 4], [5, 2], false, undefined],
  ["causal, S = T", [2, 6, 3, 4], [6, 3], true, undefined],
  ["causal, grouped-query (H 4, Hkv 2)", [1, 5, 4, 6], [5, 2], true, undefined],
  ["causal, multi-query (H 3, Hkv 1)", [2, 4, 3, 4], [4, 1], true, undefined],
  ["causal, S > T (decode offset)", [2, 3, 2, 4], [7, 2], true, undefined],
  ["causal, one query at the end of a cache", [1, 1, 4, 8], [9, 2], true, undefined],
  ["non-causal, S > T, GQA, custom scale", [1, 3, 4, 4], [6, 1], false, 0.7],
  ["non-causal, S < T (cross-attention)", [2, 5, 2, 4], [3, 2], false, undefined],
];

describe.each(backendNames)("attention on %s", (name) => {
  onBackend(name);

  describe("attention", () => {
    test.each(CASES)("attention %s matches float64", async (_, qShape, [S, Hkv], causal, scale) => {
      await noLeaks(async () => {
        const [B, , , D] = qShape;
        const q = rand(qShape, `att-q-${_}`, -2, 2);
        const kk = rand([B, S, Hkv, D], `att-k-${_}`, -2, 2);
        const v = rand([B, S, Hkv, D], `att-v-${_}`);
        const want = attentionRef(q.v, kk.v, v.v, qShape, [S, Hkv], causal, scale ?? 1 / Math.sqrt(D));
        await expectClose(k.attention(q.t, kk.t, v.t, { causal, scale }), qShape, want, { atol: 1e-5, rtol: 1e-4 });
      });
    });

    test("attention is causal by default", async () => {
      await noLeaks(async () => {
        const shape = [1, 4, 2, 4];
        const [q, kk, v] = ["q", "k", "v"].map((s) => rand(shape, `att-default-${s}`));
        await expectClose(k.attention(q.t, kk.t, v.t), shape, attentionRef(q.v, kk.v, v.v, shape, [4, 2], true, 0.5), { atol: 1e-5, rtol: 1e-4 });
      });
    });

    test.each(CASES)("attention %s: gradients of q, k, v match finite differences", async (_, qShape, [S, Hkv], causal, scale) => {
      await noLeaks(async () => {
        const [B, , , D] = qShape;
        const q = rand(qShape, `att-gq-${_}`, -1.5, 1.5).t;
        const kk = rand([B, S, Hkv, D], `att-gk-${_}`, -1.5, 1.5).t;
        const v = rand([B, S, Hkv, D], `att-gv-${_}`).t;
        await expectGrad((a, b, c) => k.attention(a, b, c, { causal, scale }), [q, kk, v], { tol: 2e-3, mutate: ["attention"] });
      });
    });

    test("shape errors are clear", () => {
      k.scope(() => {
        const q = k.zeros([1, 4, 4, 8]);
        expect(() => k.attention(q, k.zeros([1, 3, 2, 8]), k.zeros([1, 3, 2, 8]))).toThrow(/\[attention\] causal attention needs S >= T, got S=3, T=4/);
        expect(() => k.attention(q, k.zeros([1, 4, 3, 8]), k.zeros([1, 4, 3, 8]))).toThrow(/\[attention\] 4 query heads are not a multiple of 3 kv heads/);
        expect(() => k.attention(q, k.zeros([1, 4, 2, 8]), k.zeros([1, 4, 2, 4]))).toThrow(/\[attention\] k .* and v .* do not fit q/);
        expect(() => k.attention(k.zeros([4, 4, 8]), q, q)).toThrow(/\[attention\] q, k, v must be \[B, T, H, D\]/);
      });
    });
  });

  describe("qkvAttention (packed q, k, v columns of one [B, T, (H + 2·Hkv)·D])", () => {
    // name, [B, T, H, Hkv, D], causal, scale
    const PACKED: [string, number[], boolean, number | undefined][] = [
      ["causal, GPT-2 layout", [2, 6, 3, 3, 4], true, undefined],
      ["causal, grouped-query (H 4, Hkv 2)", [1, 7, 4, 2, 6], true, undefined],
      ["non-causal, multi-query, custom scale", [2, 5, 3, 1, 4], false, 0.7],
      ["causal, one token", [2, 1, 2, 2, 4], true, undefined],
    ];
    /** q, k, v of a packed row as separate float64 [B, T, heads, D] arrays */
    const columns = (x: Float64Array, [B, T, H, Hkv, D]: number[]) => {
      const row = (H + 2 * Hkv) * D;
      const take = (from: number, heads: number) => {
        const out = new Float64Array(B * T * heads * D);
        for (let r = 0; r < B * T; r++) out.set(x.subarray(r * row + from, r * row + from + heads * D), r * heads * D);
        return out;
      };
      return [take(0, H), take(H * D, Hkv), take((H + Hkv) * D, Hkv)];
    };

    test.each(PACKED)("qkvAttention %s matches float64", async (_, dims, causal, scale) => {
      await noLeaks(async () => {
        const [B, T, H, Hkv, D] = dims;
        const qkv = rand([B, T, (H + 2 * Hkv) * D], `qkv-${_}`, -2, 2);
        const [q, kk, v] = columns(qkv.v, dims);
        const want = attentionRef(q, kk, v, [B, T, H, D], [T, Hkv], causal, scale ?? 1 / Math.sqrt(D));
        await expectClose(k.qkvAttention(qkv.t, { nHead: H, nKvHead: Hkv, causal, scale }), [B, T, H, D], want, { atol: 1e-5, rtol: 1e-4 });
      });
    });

    test.each(PACKED)("qkvAttention %s: the gradient of qkv matches finite differences", async (_, [B, T, H, Hkv, D], causal, scale) => {
      await noLeaks(async () => {
        const qkv = rand([B, T, (H + 2 * Hkv) * D], `qkv-g-${_}`, -1.5, 1.5).t;
        await expectGrad((x) => k.qkvAttention(x, { nHead: H, nKvHead: Hkv, causal, scale }), [qkv], { tol: 2e-3, mutate: ["qkv_attention"] });
      });
    });

    test("qkvAttention equals split + attention, forward and the gradient of qkv", async () => {
      await noLeaks(async () => {
        const [B, T, H, D] = [2, 9, 4, 8], C = H * D;
        const x = rand([B, T, 3 * C], "qkv-vs-split", -2, 2).t;
        const w = rand([B, T, H, D], "qkv-vs-split-w").t;
        const run = (packed: boolean) => k.scope(() => {
          const qkv = x.detach().requireGrad();
          const y = packed
            ? k.qkvAttention(qkv, { nHead: H })
            : k.attention(...(k.split(qkv, [C, C, C], -1).map((t) => t.reshape(B, T, H, D)) as [k.Tensor, k.Tensor, k.Tensor]));
          y.mul(w).sum().backward();
          return [y.detach(), qkv.grad!.mul(1)];
        });
        const [y1, g1] = run(true), [y2, g2] = run(false);
        expect(await y1.data()).toBeAllClose(await y2.data(), { atol: 1e-6, rtol: 1e-6 });
        expect(await g1.data()).toBeAllClose(await g2.data(), { atol: 1e-6, rtol: 1e-6 });
        for (const t of [x, w, y1, g1, y2, g2]) t.dispose();
      });
    });

    test("qkvAttention shape errors are clear", () => {
      k.scope(() => {
        expect(() => k.qkvAttention(k.zeros([1, 4, 3, 8]), { nHead: 2 })).toThrow(/\[qkvAttention\] qkv must be \[B, T, \(nHead \+ 2·nKvHead\)·D\]/);
        expect(() => k.qkvAttention(k.zeros([1, 4, 25]), { nHead: 2 })).toThrow(/nHead=2, nKvHead=2/);
        expect(() => k.qkvAttention(k.zeros([1, 4, 40]), { nHead: 3, nKvHead: 2 })).toThrow(/qkvAttention/);
      });
    });
  });

  describe("rope", () => {
    const ROPES: [string, number[], number, number][] = [
      ["default theta, offset 0", [2, 5, 3, 8], 10000, 0],
      ["theta 500, offset 7 (decode)", [1, 3, 2, 6], 500, 7],
      ["D = 2", [2, 4, 1, 2], 10000, 0],
    ];

    test.each(ROPES)("rope %s matches float64", async (_, shape, theta, offset) => {
      await noLeaks(async () => {
        const x = rand(shape, `rope-${_}`, -2, 2);
        const want = ropeRef(x.v, shape, theta, offset);
        const out = theta === 10000 && offset === 0 ? k.rope(x.t) : k.rope(x.t, { theta, offset });
        await expectClose(out, shape, want, { atol: 1e-5, rtol: 1e-4 });
      });
    });

    test.each(ROPES)("rope %s: gradient matches finite differences", async (_, shape, theta, offset) => {
      await noLeaks(async () => {
        await expectGrad((x) => k.rope(x, { theta, offset }), [rand(shape, `rope-grad-${_}`, -2, 2).t], { tol: 2e-3, mutate: ["rope"] });
      });
    });

    test("an odd head dim or a wrong rank is a clear error", () => {
      k.scope(() => {
        expect(() => k.rope(k.zeros([1, 2, 2, 5]))).toThrow(/\[rope\] x must be \[B, T, H, D\] with D even/);
        expect(() => k.rope(k.zeros([2, 2, 4]))).toThrow(/\[rope\]/);
      });
    });
  });
});
