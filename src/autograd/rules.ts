// One gradient rule (vector-Jacobian product) per op in src/ops/spec.ts, written with front-end
// ops, or with the op's fused backward kernel where one exists (layer_norm, attention, ...).
// A rule gets the output gradient g and the node, and returns one gradient per input (null where
// an input takes none). `needs[j]` says whether input j takes a gradient at all (a frozen parameter
// does not; absent: every input): rules with costly per-input products (matmul, linear) skip the
// ones nobody needs.
// Rules run under noGrad (no double backward).

import type { KernelParams } from "../backend/kernels.ts";
import type { OpName, OpSpecs } from "../ops/spec.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Node } from "./tape.ts";
import * as ops from "../ops/index.ts";
import { alloc, allocZeros, launch, launchGroup, launchOf } from "../ops/dispatch.ts";
import { copyKernel, batchedGemm, dtypeCode } from "../ops/index.ts";
import { broadcastShapes, stridesOf } from "../tensor/shape.ts";
import { withAutocast } from "../tensor/mode.ts";
import { widen } from "../ops/autocast.ts";

export type VjpRule<K extends OpName> = (g: Tensor, node: Node<K>, needs?: readonly boolean[]) => (Tensor | null)[];
/** A rule that adds its (single) input gradient into `acc`, a gradient buffer the tape owns alone. */
export type VjpIntoRule<K extends OpName> = (g: Tensor, node: Node<K>, acc: Tensor) => void;
export type NonDiff = "nondiff";

export const vjp: { [K in OpName]: VjpRule<K> | NonDiff } = {
  add: (g, { ctx }) => [ops.sumTo(g, ctx.aShape), ops.sumTo(g, ctx.bShape)],
  sub: (g, { ctx }) => [ops.sumTo(g, ctx.aShape), owned(ops.sumTo, ops.neg(g), ctx.bShape)],
  mul: (g, { ctx: { a, b } }) => [owned(ops.sumTo, ops.mul(g, widen(b)), a.shape), owned(ops.sumTo, ops.mul(g, widen(a)), b.shape)],
  div: (g, { ctx: { a, b } }) => {
    const ga = owned(ops.sumTo, ops.div(g, b), a.shape);
    const q = ops.div(ops.mul(g, a), ops.mul(b, b)); // g·a/b²
    return [ga, owned(ops.sumTo, ops.neg(q), b.shape)];
  },
  affine: (g, { ctx }) => [ops.affine(g, ctx.alpha, 0)],
  pow: (g, { ctx: { x, p } }) => [ops.mul(g, ops.affine(ops.pow(x, p - 1), p, 0))],
  exp: (g, { ctx }) => [ops.mul(g, ctx.out)],
  log: (g, { ctx }) => [ops.div(g, ctx.x)],
  sqrt: (g, { ctx }) => [ops.div(ops.affine(g, 0.5, 0), ctx.out)],
  tanh: (g, { ctx }) => [ops.mul(g, ops.affine(ops.mul(ctx.out, ctx.out), -1, 1))],
  sigmoid: (g, { ctx }) => [ops.mul(g, ops.mul(ctx.out, ops.affine(ctx.out, -1, 1)))],
  relu: (g, { ctx }) => [backwardKernel("relu_backward", ctx.x, g)],
  gelu: (g, { ctx }) => [ops.mul(g, widen(ctx.dgelu))], // gelu'(x), written by the forward (gelu_with_grad)
  silu: (g, { ctx }) => [backwardKernel("silu_backward", widen(ctx.x), g)],
  dropout: (g, { ctx }) => {
    const dx = alloc(g.backend, g.shape);
    launch("dropout_backward", [g], [dx], { n: g.size, p: ctx.p, seed: ctx.seed });
    return [dx];
  },
  sum: (g, { ctx: { inShape, axes } }) => {
    // re-insert the reduced dims as 1, then broadcast back
    const kept = inShape.map((d, i) => (axes.includes(i) ? 1 : d));
    return [ops.expandRaw(g.reshape(kept), inShape)];
  },
  max: "nondiff",
  reshape: (g, { ctx }) => [g.reshape([...ctx.inShape])],
  permute: (g, { ctx }) => {
    const inverse = new Array<number>(ctx.dims.length);
    ctx.dims.forEach((d, i) => (inverse[d] = i));
    return [ops.permute(g, inverse)];
  },
  expand: (g, { ctx }) => [ops.sumTo(g, ctx.inShape)],
  narrow: (g, node) => {
    const dx = allocZeros(g.backend, node.ctx.inShape);
    narrowInto(g, node, dx);
    return [dx];
  },
  cat: (g, { ctx }) => {
    let start = 0;
    return ctx.sizes.map((size) => {
      const piece = ops.narrow(g, ctx.axis, start, size);
      start += size;
      return piece;
    });
  },
  // the backward products run in the precision the forward ran in (withAutocast, recorded by the op)
  matmul: (g, { ctx: { a: a16, b: b16, autocast } }, [needA = true, needB = true] = []) => withAutocast(autocast, () => {
    // an f16 copy autocast kept is read as it is where it is the product's B (da = g·bᵀ), widened elsewhere
    const a = widen(a16), b = a16.rank === 2 && b16.rank === 2 ? b16 : widen(b16);
    if (a.rank === 2 && b.rank === 2) {
      // da = g·bᵀ and db = aᵀ·g: independent, run together (on wasm one per thread)
      const [M, K] = a.shape, N = b.shape[1];
      const gemm = { batch: 1, strideA: 0, strideB: 0, hasBias: 0 };
      const da = needA ? alloc(g.backend, a.shape) : null, db = needB ? alloc(g.backend, b.shape) : null;
      const launches = [];
      if (da) launches.push(launchOf("matmul", [g, b, null], [da], { ...gemm, M, N: K, K: N, transA: 0, transB: 1, dtypeB: dtypeCode(b) }));
      if (db) launches.push(launchOf("matmul", [a, g, null], [db], { ...gemm, M: K, N, K: M, transA: 1, transB: 0 }));
      launchGroup(g.backend, launches);
      return [da, db];
    }
    // promote 1-D operands the way the forward did, and view g as the batched product's output
    const a2 = a.rank === 1 ? a.reshape([1, a.shape[0]]) : a; // [..., M, K]
    const b2 = b.rank === 1 ? b.reshape([b.shape[0], 1]) : b; // [..., K, N]
    const batch = broadcastShapes("matmul", a2.shape.slice(0, -2), b2.shape.slice(0, -2));
    const g2 = g.reshape([...batch, a2.shape[a2.rank - 2], b2.shape[b2.rank - 1]]); // [..., M, N]
    const da = needA ? batchedGemm("matmul", g2, b2, { transB: true }) : null; // [..., M, K]
    const db = !needB
      ? null
      : b2.rank === 2
        ? batchedGemm("matmul", a2.reshape([-1, a2.shape[a2.rank - 1]]), g2.reshape([-1, g2.shape[g2.rank - 1]]), { transA: true }) // [K, N]
        : batchedGemm("matmul", a2, g2, { transA: true }); // [..., K, N]
    return [
      da && owned(ops.sumTo, da, a2.shape).reshape([...a.shape]),
      db && owned(ops.sumTo, db, b2.shape).reshape([...b.shape]),
    ];
  }),
  linear: (g, { ctx: { x: saved, w, hasBias, wLayout, autocast } }, [needX = true, needW = true, needB = true] = []) => withAutocast(autocast, () => {
    // an f16 copy autocast kept is read as it is where it is the product's B (dW of a [out, in] weight)
    const x = wLayout === "out_in" ? saved : widen(saved);
    const out = g.shape[g.rank - 1];
    const g2 = g.reshape([-1, out]); // [M, out]
    const x2 = x.reshape([-1, x.shape[x.rank - 1]]); // [M, in]
    const [M, inF] = x2.shape;
    const gemm = { batch: 1, transB: 0, strideA: 0, strideB: 0, hasBias: 0 };
    const dx = needX ? alloc(g.backend, x.shape) : null;
    const dw = needW ? alloc(g.backend, w.shape) : null;
    const db = hasBias && needB ? alloc(g.backend, [out]) : null;
    const launches = [];
    // dx = g·W (W [out, in]) or g·Wᵀ (W [in, out])
    if (dx) launches.push(launchOf("matmul", [g2, w, null], [dx], { ...gemm, M, N: inF, K: out, transA: 0, transB: wLayout === "in_out" ? 1 : 0, dtypeB: dtypeCode(w) }));
    // dW = gᵀ·x ([out, in]) or xᵀ·g ([in, out]): never launched for a frozen weight
    if (dw) {
      launches.push(wLayout === "out_in"
        ? launchOf("matmul", [g2, x2, null], [dw], { ...gemm, M: out, N: inF, K: M, transA: 1, dtypeB: dtypeCode(x2) })
        : launchOf("matmul", [x2, g2, null], [dw], { ...gemm, M: inF, N: out, K: M, transA: 1 }));
    }
    if (db) launches.push(launchOf("sum", [g2], [db], { outer: 1, len: M, inner: out })); // db = Σ_rows g
    // independent of each other: run together (on wasm, dx and dW one per thread)
    launchGroup(g.backend, launches);
    return [dx, dw, db];
  }),
  softmax: (g, { ctx }) => {
    const dx = alloc(g.backend, g.shape);
    const cols = g.shape[g.rank - 1];
    launch("softmax_backward", [ctx.out, g], [dx], { rows: g.size / cols, cols });
    return [dx];
  },
  embedding: (g, { ctx: { ids, V } }) => {
    const C = g.shape[g.rank - 1];
    const dw = allocZeros(g.backend, [V, C]);
    launch("embedding_backward", [ids, g], [dw], { n: ids.size, V, C });
    return [null, dw];
  },
  layer_norm: (g, { ctx: { x, weight, mean, rstd } }) => {
    const C = x.shape[x.rank - 1];
    const dx = alloc(g.backend, x.shape);
    const dw = alloc(g.backend, [C]);
    const db = alloc(g.backend, [C]);
    launch("layer_norm_backward", [g, x, weight, mean, rstd], [dx, dw, db], { rows: x.size / C, C });
    return [dx, dw, db];
  },
  rms_norm: (g, { ctx: { x, weight, rstd } }) => {
    const C = x.shape[x.rank - 1];
    const dx = alloc(g.backend, x.shape);
    const dw = alloc(g.backend, [C]);
    launch("rms_norm_backward", [g, x, weight, rstd], [dx, dw], { rows: x.size / C, C });
    return [dx, dw];
  },
  rope: (g, { ctx }) => {
    const [B, T, H, D] = g.shape;
    const dx = alloc(g.backend, g.shape);
    launch("rope_backward", [g], [dx], { B, T, H, D, theta: ctx.theta, offset: ctx.offset });
    return [dx];
  },
  attention: (g, { ctx: { lse, scale, causal, ...saved } }) => {
    const [q, k, v, out] = [saved.q, saved.k, saved.v, saved.out].map(widen);
    const [B, T, H, D] = q.shape;
    const [, S, Hkv] = k.shape;
    const dq = alloc(g.backend, q.shape);
    const dk = alloc(g.backend, k.shape);
    const dv = alloc(g.backend, v.shape);
    launch("attention_backward", [g, q, k, v, out, lse], [dq, dk, dv], {
      B, T, S, H, Hkv, D, scale, causal: causal ? 1 : 0,
    });
    return [dq, dk, dv];
  },
  qkv_attention: (g, { ctx: { lse, params, ...saved } }) => {
    const [qkv, out] = [saved.qkv, saved.out].map(widen);
    // dq, dk, dv are disjoint columns of one dqkv, each written in full by the kernel
    const dqkv = alloc(g.backend, qkv.shape);
    launch("attention_backward", [g, qkv, qkv, qkv, out, lse], [dqkv, dqkv, dqkv], params as KernelParams<"attention_backward">);
    return [dqkv];
  },
  // the gradient goes back in the source's dtype; a 16-bit source never requires grad (dtype.ts)
  cast: (g, { ctx }) => [ops.cast(g, ctx.from)],
  cross_entropy: (g, { ctx: { logits, targets, lse, ignoreIndex } }) => {
    const V = logits.shape[logits.rank - 1];
    const N = logits.size / V;
    const dlogits = alloc(g.backend, logits.shape);
    launch("cross_entropy_backward", [logits, targets, lse, g], [dlogits], { N, V, ignoreIndex });
    return [dlogits, null];
  },
  custom: (g, { ctx, inputs }, needs) => ctx.backward(g, needs ?? inputs.map((t) => !!t)),
};

/** Calls fn(t, ...rest) and disposes t if fn made a new tensor from it. */
function owned<A extends unknown[]>(fn: (t: Tensor, ...rest: A) => Tensor, t: Tensor, ...rest: A): Tensor {
  const r = fn(t, ...rest);
  if (r !== t) t.dispose();
  return r;
}

function backwardKernel(kernel: "relu_backward" | "silu_backward", x: Tensor, g: Tensor): Tensor {
  const dx = alloc(g.backend, x.shape);
  launch(kernel, [x, g], [dx], { n: x.size });
  return dx;
}

export type { OpSpecs };

/**
 * Rules that can scatter-add their input's gradient into one the tape already holds for it, instead
 * of returning a zero-filled buffer that the tape then adds: for split/narrow pieces (the q, k, v
 * of a fused projection) this saves a fill and an add of the whole input per piece after the first.
 * Same values as the plain rule (up to the sign of zero sums).
 */
export const vjpInto: { [K in OpName]?: VjpIntoRule<K> } = {
  narrow: (g, node, acc) => narrowInto(g, node, acc),
};

function narrowInto(g: Tensor, { ctx }: Node<"narrow">, dx: Tensor): void {
  const strides = stridesOf(ctx.inShape);
  copyKernel(g, dx, g.shape, strides, ctx.start * strides[ctx.axis], true);
}
