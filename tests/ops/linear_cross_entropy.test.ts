// linearCrossEntropy (src/ops/linear_cross_entropy.ts): the LM head and cross-entropy chunk by
// chunk of positions. Its loss and its gradients (hidden, weight, bias) equal the unchunked
// crossEntropy(linear(h, W, b), targets) within 1e-5 for every reduction, with masked targets, for
// a chunk size that does not divide N, one position per chunk, and a tied head (the weight is also
// the embedding that made the hidden states); and its gradients match finite differences.
import { describe, expect, test } from "bun:test";
import * as k from "../../src/index.ts";
import { backendNames, expectGrad, noLeaks, onBackend, rand } from "./helpers.ts";

const B = 2, T = 5, C = 6, V = 11;
// position 1 and 7 masked (-100), the rest counted
const TARGETS = [3, -100, 0, 10, 7, 2, 9, -100, 1, 4];
const REDUCTIONS = ["mean", "sum", "none"] as const;

interface Run {
  loss: Float32Array;
  grads: Float32Array[];
}

/** Loss and gradients of f(h, W, b) weighted by fixed per-position weights (so "none" matters row by row). */
async function run(f: (h: k.Tensor, w: k.Tensor, b: k.Tensor) => k.Tensor, tied = false, frozenHead = false): Promise<Run> {
  return k.asyncScope(async () => {
    const w = rand([V, C], "lce-w", -0.8, 0.8).t.requireGrad(!frozenHead);
    const b = rand([V], "lce-b", -0.5, 0.5).t.requireGrad(!frozenHead);
    const h0 = rand([B, T, C], "lce-h", -1, 1).t.requireGrad();
    // tied: the hidden states come from the head's own matrix as an embedding table
    const ids = k.fromArray(Int32Array.from([1, 4, 2, 9, 0, 3, 3, 7, 5, 8]), [B, T], { dtype: "i32" });
    const h = tied ? k.embedding(ids, w).mul(h0) : h0;
    const out = f(h, w, b);
    const weights = k.fromArray(Float32Array.from({ length: out.size }, (_, i) => 0.5 + 0.1 * i), out.shape);
    const loss = out.mul(weights).sum();
    loss.backward();
    const grads = [h0, w, b].map((t) => t.grad ?? k.zeros(t.shape));
    return { loss: (await out.data()) as Float32Array, grads: (await Promise.all(grads.map((g) => g.data()))) as Float32Array[] };
  });
}

describe.each(backendNames)("linearCrossEntropy on %s", (name) => {
  onBackend(name);
  const targets = () => k.fromArray(Int32Array.from(TARGETS), [B, T], { dtype: "i32" });

  // the head trainable (untied or tied to the embedding) or frozen (LoRA): each gradient path
  const HEADS = [["", false, false], [", tied head", true, false], [", frozen head", false, true]] as const;
  for (const reduction of REDUCTIONS) {
    for (const [label, tied, frozen] of HEADS) {
      test.each([[undefined], [3], [1], [B * T]])(`${reduction}${label}: chunk size %p equals crossEntropy(linear(...)) within 1e-5`, async (chunkSize) => {
        await noLeaks(async () => {
          const want = await run((h, w, b) => k.crossEntropy(k.linear(h, w, b), targets(), { reduction }), tied, frozen);
          const got = await run((h, w, b) => k.linearCrossEntropy(h, w, targets(), { reduction, bias: b, chunkSize }), tied, frozen);
          expect(got.loss).toBeAllClose(want.loss, { atol: 1e-5, rtol: 1e-5 });
          got.grads.forEach((g, i) => expect(g).toBeAllClose(want.grads[i], { atol: 1e-5, rtol: 1e-5 }));
          // masked rows: no loss, no gradient to their hidden state (untied: h is the leaf)
          if (reduction === "none") TARGETS.forEach((t, i) => t === -100 && expect(got.loss[i]).toBe(0));
          if (!tied) TARGETS.forEach((t, i) => t === -100 && expect(Array.from(got.grads[0].subarray(i * C, (i + 1) * C))).toEqual(new Array(C).fill(0)));
        });
      });
    }
  }

  test.each(REDUCTIONS)("%s: gradients of hidden, weight and bias match finite differences (chunks of 3 over 10 positions)", async (reduction) => {
    await noLeaks(async () => {
      const h = rand([B, T, C], "lce-fd-h", -1, 1).t;
      const w = rand([V, C], "lce-fd-w", -0.8, 0.8).t;
      const b = rand([V], "lce-fd-b", -0.5, 0.5).t;
      const f = (x: k.Tensor, y: k.Tensor, z: k.Tensor) => k.linearCrossEntropy(x, y, targets(), { bias: z, chunkSize: 3, reduction }).mul(reduction === "mean" ? 20 : 4);
      await expectGrad(f, [h, w, b], { tol: 2e-3, mutate: ["custom"] });
    });
  });

  test.each(["bf16", "f16"] as const)("a frozen %s head (16-bit storage) gives the loss and hidden gradient of linear on it (1e-5)", async (dtype) => {
    await noLeaks(async () => {
      const w = rand([V, C], "lce-w", -0.8, 0.8).t.to(dtype);
      const lossAndGrad = async (f: (h: k.Tensor) => k.Tensor) => {
        const h = rand([B, T, C], "lce-h", -1, 1).t.requireGrad();
        const l = f(h);
        l.backward();
        return [await l.item(), (await h.grad!.data()) as Float32Array] as const;
      };
      const [want, wantGrad] = await lossAndGrad((h) => k.crossEntropy(k.linear(h, w), targets()));
      const [got, gotGrad] = await lossAndGrad((h) => k.linearCrossEntropy(h, w, targets(), { chunkSize: 3 }));
      expect(Math.abs(got - want)).toBeLessThan(1e-5);
      expect(gotGrad).toBeAllClose(wantGrad, { atol: 1e-5, rtol: 1e-5 });
    });
  });

  test.each(REDUCTIONS)("%s: SFT-style masks (prompt rows -100): logits only for the counted rows, values as crossEntropy(linear(...)); all rows masked too", async (reduction) => {
    // per sequence of 5: the first 3 positions are the prompt; the second sequence fully masked in the all-masked case
    for (const labels of [[-100, -100, -100, 4, 7, -100, -100, -100, 2, 9], new Array(B * T).fill(-100)]) {
      await noLeaks(async () => {
        const t = () => k.fromArray(Int32Array.from(labels), [B, T], { dtype: "i32" });
        const backend = k.defaultBackend();
        const run0 = backend.run.bind(backend);
        let headRows = 0;
        backend.run = ((kernel: string, inputs: never, outputs: never, params: Record<string, number>) => {
          if (kernel === "matmul" && params.N === V) headRows += params.M!;
          run0(kernel as never, inputs, outputs, params as never);
        }) as typeof backend.run;
        let got: Run;
        try {
          got = await run((h, w, b) => k.linearCrossEntropy(h, w, t(), { reduction, bias: b, chunkSize: 4 }));
        } finally {
          backend.run = run0;
        }
        const counted = labels.filter((x) => x !== -100).length;
        // forward logits for the counted rows only (and once more in backward where it recomputes them)
        expect([counted || 4, 2 * (counted || 4)]).toContain(headRows);
        const want = await run((h, w, b) => k.crossEntropy(k.linear(h, w, b), t(), { reduction }));
        if (counted) expect(got!.loss).toBeAllClose(want.loss, { atol: 1e-5, rtol: 1e-5 });
        else expect(Array.from(got!.loss).every((x) => x === 0 || Number.isNaN(x))).toBe(true);
        // (a mean over no counted targets is 0/0, as in PyTorch: nothing to compare)
        if (counted || reduction !== "mean") got!.grads.forEach((g, i) => expect(g).toBeAllClose(want.grads[i], { atol: 1e-5, rtol: 1e-5 }));
      });
    }
  });

  test("a frozen head gets no gradient", async () => {
    await noLeaks(async () => {
      const w = rand([V, C], "lce-w", -0.8, 0.8).t;
      const h = rand([B, T, C], "lce-h", -1, 1).t.requireGrad();
      const loss = k.linearCrossEntropy(h, w, targets(), { chunkSize: 4 });
      loss.backward();
      expect(w.grad).toBeNull();
      expect(h.grad!.shape).toEqual([B, T, C]);
    });
  });

  test("peak memory of forward + backward stays below the [N, V] logits (the unchunked path needs more than them)", async () => {
    const N = 64, Vbig = 4000, logitsBytes = N * Vbig * 4;
    const peakOf = async (f: (h: k.Tensor, w: k.Tensor, t: k.Tensor) => k.Tensor) => {
      let peak = 0;
      await noLeaks(async () => {
        const backend = k.defaultBackend();
        const w = rand([Vbig, C], "lce-mem-w", -0.5, 0.5).t.requireGrad();
        const h = rand([N, C], "lce-mem-h", -1, 1).t.requireGrad();
        const t = k.fromArray(Int32Array.from({ length: N }, (_, i) => (i * 37) % Vbig), [N], { dtype: "i32" });
        await backend.flush();
        const base = backend.stats().allocatedBytes;
        backend.resetPeak();
        f(h, w, t).backward();
        await backend.flush();
        peak = backend.stats().peakBytes - base;
      });
      return peak;
    };
    const chunked = await peakOf((h, w, t) => k.linearCrossEntropy(h, w, t, { chunkSize: 8 }));
    const full = await peakOf((h, w, t) => k.crossEntropy(k.linear(h, w), t));
    expect(full).toBeGreaterThan(logitsBytes);
    // one chunk's logits and dlogits (2 · 8 · V · 4) plus dW and its per-chunk term (2 · V · C · 4)
    expect(chunked).toBeLessThan(2 * 8 * Vbig * 4 + 2 * Vbig * C * 4 + 64 * 1024);
    expect(chunked).toBeLessThan(logitsBytes);
  });

  test("bad shapes and chunk sizes are clear errors", () => {
    k.scope(() => {
      const w = k.zeros([V, C]);
      expect(() => k.linearCrossEntropy(k.zeros([B, T, C + 1]), w, targets())).toThrow(/does not end in the weight's 6 features/);
      expect(() => k.linearCrossEntropy(k.zeros([B, T, C]), w, targets(), { chunkSize: 0 })).toThrow(/chunkSize must be a positive integer/);
      expect(() => k.linearCrossEntropy(k.zeros([B, T, C]), w, k.zeros([B, T]))).toThrow(/targets must be i32/);
      expect(() => k.linearCrossEntropy(k.zeros([B, T, C]), w, k.fromArray(Int32Array.of(V, 0), [1, 2], { dtype: "i32" }))).toThrow(/do not match/);
    });
  });
});
