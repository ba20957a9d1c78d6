// The float64 oracle: one plain, obviously-correct function per kernel of src/backend/kernels.ts
// (same name, camelCase), in the spirit of llm.c's *_forward_naive. Not fast, not shared with any
// backend. Each takes the inputs in kernel-list order (null for an absent optional input) and the
// params, and returns the outputs in kernel-list order. `init` gives the starting contents of
// outputs that a kernel reads ("+=" and in-place outputs: copy_backward, embedding_backward,
// sum_squares with accumulate, adamw); other outputs ignore it.

import type { KernelName, KernelParams } from "../src/backend/kernels.ts";

type In = (Float64Array | null)[];
type Ref<K extends KernelName> = (inputs: In, p: KernelParams<K>, init?: Float64Array[]) => Float64Array[];

const f64 = (n: number) => new Float64Array(n);
const map = (x: Float64Array, n: number, f: (v: number, i: number) => number) => {
  const out = f64(n);
  for (let i = 0; i < n; i++) out[i] = f(x[i], i);
  return out;
};
const maxOf = (xs: ArrayLike<number>) => {
  let m = -Infinity;
  for (let i = 0; i < xs.length; i++) if (xs[i] > m || Number.isNaN(xs[i])) m = xs[i];
  return m;
};
const sigmoidOf = (x: number) => 1 / (1 + Math.exp(-x));
const GELU_K = Math.sqrt(2 / Math.PI);

// ---- elementwise ----

export const fill: Ref<"fill"> = (_, p) => [f64(p.n).fill(p.value)];
const binary = (f: (a: number, b: number) => number) =>
  ([a, b]: In, p: { n: number; na: number; nb: number }) => {
    const out = f64(p.n);
    for (let i = 0; i < p.n; i++) out[i] = f(a![i % p.na], b![i % p.nb]);
    return [out];
  };
export const add: Ref<"add"> = binary((a, b) => a + b);
export const sub: Ref<"sub"> = binary((a, b) => a - b);
export const mul: Ref<"mul"> = binary((a, b) => a * b);
export const div: Ref<"div"> = binary((a, b) => a / b);
export const affine: Ref<"affine"> = ([x], p) => [map(x!, p.n, (v) => v * p.alpha + p.beta)];
export const pow: Ref<"pow"> = ([x], p) => [map(x!, p.n, (v) => Math.pow(v, p.p))];
export const exp: Ref<"exp"> = ([x], p) => [map(x!, p.n, Math.exp)];
export const log: Ref<"log"> = ([x], p) => [map(x!, p.n, Math.log)];
export const sqrt: Ref<"sqrt"> = ([x], p) => [map(x!, p.n, Math.sqrt)];
export const tanh: Ref<"tanh"> = ([x], p) => [map(x!, p.n, Math.tanh)];
export const sigmoid: Ref<"sigmoid"> = ([x], p) => [map(x!, p.n, sigmoidOf)];
export const relu: Ref<"relu"> = ([x], p) => [map(x!, p.n, (v) => Math.max(v, 0))];
export const reluBackward: Ref<"relu_backward"> = ([x, dout], p) => [map(x!, p.n, (v, i) => (v > 0 ? dout![i] : 0))];
export const gelu: Ref<"gelu"> = ([x], p) =>
  [map(x!, p.n, (v) => 0.5 * v * (1 + Math.tanh(GELU_K * (v + 0.044715 * v ** 3))))];
/** d/dx of the tanh GELU, differentiated directly (not through the kernels' sigmoid form) */
function geluDerivative(v: number): number {
  const t = Math.tanh(GELU_K * (v + 0.044715 * v ** 3));
  return 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * GELU_K * (1 + 3 * 0.044715 * v * v);
}
export const geluWithGrad: Ref<"gelu_with_grad"> = (inputs, p) => [...gelu(inputs, p), map(inputs[0]!, p.n, geluDerivative)];
export const silu: Ref<"silu"> = ([x], p) => [map(x!, p.n, (v) => v * sigmoidOf(v))];
export const siluBackward: Ref<"silu_backward"> = ([x, dout], p) =>
  [map(x!, p.n, (v, i) => {
    const s = sigmoidOf(v);
    return dout![i] * s * (1 + v * (1 - s));
  })];

/** The 32-bit PCG hash of kernels.ts (dropout). */
export function pcg(x: number): number {
  const s = (Math.imul(x >>> 0, 747796405) + 2891336453) >>> 0;
  const w = Math.imul(((s >>> ((s >>> 28) + 4)) ^ s) >>> 0, 277803737) >>> 0;
  return ((w >>> 22) ^ w) >>> 0;
}
/** keep element i of dropout(seed, p) */
export function dropoutKeep(i: number, p: number, seed: number): boolean {
  const u = (pcg((i + pcg(seed >>> 0)) >>> 0) >>> 8) / 2 ** 24;
  return u >= p;
}
export const dropout: Ref<"dropout"> = ([x], p) =>
  [map(x!, p.n, (v, i) => (dropoutKeep(i, p.p, p.seed) ? v / (1 - p.p) : 0))];
export const dropoutBackward: Ref<"dropout_backward"> = ([dout], p) =>
  [map(dout!, p.n, (v, i) => (dropoutKeep(i, p.p, p.seed) ? v / (1 - p.p) : 0))];

// ---- movement ----

type CopyParams = KernelParams<"copy">;
/** Calls f(outIndex, xIndex) for every element of the 6-d strided view. */
function forEachStrided(p: CopyParams, f: (o: number, x: number) => void): void {
  const d = [p.d0, p.d1, p.d2, p.d3, p.d4, p.d5];
  const s = [p.s0, p.s1, p.s2, p.s3, p.s4, p.s5];
  let o = 0;
  for (let i0 = 0; i0 < d[0]; i0++)
    for (let i1 = 0; i1 < d[1]; i1++)
      for (let i2 = 0; i2 < d[2]; i2++)
        for (let i3 = 0; i3 < d[3]; i3++)
          for (let i4 = 0; i4 < d[4]; i4++)
            for (let i5 = 0; i5 < d[5]; i5++)
              f(o++, p.offset + i0 * s[0] + i1 * s[1] + i2 * s[2] + i3 * s[3] + i4 * s[4] + i5 * s[5]);
}
export const copy: Ref<"copy"> = ([x], p) => {
  const out = f64(p.n);
  forEachStrided(p, (o, i) => (out[o] = x![i]));
  return [out];
};
export const copyBackward: Ref<"copy_backward"> = ([dout], p, init) => {
  const dx = Float64Array.from(init![0]);
  forEachStrided(p, (o, i) => (dx[i] += dout![o]));
  return [dx];
};

// ---- reductions ----

export const sum: Ref<"sum"> = ([x], p) => {
  const out = f64(p.outer * p.inner);
  for (let o = 0; o < p.outer; o++)
    for (let l = 0; l < p.len; l++)
      for (let i = 0; i < p.inner; i++) out[o * p.inner + i] += x![(o * p.len + l) * p.inner + i];
  return [out];
};
export const max: Ref<"max"> = ([x], p) => {
  const out = f64(p.outer * p.inner), idx = f64(p.outer * p.inner);
  for (let o = 0; o < p.outer; o++)
    for (let i = 0; i < p.inner; i++) {
      let best = -Infinity, arg = 0;
      for (let l = 0; l < p.len; l++) {
        const v = x![(o * p.len + l) * p.inner + i];
        if (l === 0 || v > best || (Number.isNaN(v) && !Number.isNaN(best))) [best, arg] = [v, l];
      }
      out[o * p.inner + i] = best;
      idx[o * p.inner + i] = arg;
    }
  return [out, idx];
};
export const sumSquares: Ref<"sum_squares"> = ([x], p, init) => {
  let s = p.accumulate ? init![0][0] : 0;
  for (let i = 0; i < p.n; i++) s += x![i] * x![i];
  return [Float64Array.of(s)];
};

// ---- softmax ----

export const softmax: Ref<"softmax"> = ([x], p) => {
  const out = f64(p.rows * p.cols);
  for (let r = 0; r < p.rows; r++) {
    const row = x!.subarray(r * p.cols, (r + 1) * p.cols);
    const m = maxOf(row);
    let s = 0;
    for (const v of row) s += Math.exp(v - m);
    for (let c = 0; c < p.cols; c++) out[r * p.cols + c] = Math.exp(row[c] - m) / s;
  }
  return [out];
};
export const softmaxBackward: Ref<"softmax_backward"> = ([out, dout], p) => {
  const dx = f64(p.rows * p.cols);
  for (let r = 0; r < p.rows; r++) {
    let dot = 0;
    for (let c = 0; c < p.cols; c++) dot += dout![r * p.cols + c] * out![r * p.cols + c];
    for (let c = 0; c < p.cols; c++) dx[r * p.cols + c] = out![r * p.cols + c] * (dout![r * p.cols + c] - dot);
  }
  return [dx];
};

// ---- matmul ----

export const matmul: Ref<"matmul"> = ([a, b, bias], p) => {
  const { batch, M, N, K } = p;
  const out = f64(batch * M * N);
  for (let bi = 0; bi < batch; bi++)
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++) {
        let s = p.hasBias ? bias![n] : 0;
        for (let k = 0; k < K; k++) {
          const av = a![bi * p.strideA + (p.transA ? k * M + m : m * K + k)];
          const bv = b![bi * p.strideB + (p.transB ? n * K + k : k * N + n)];
          s += av * bv;
        }
        out[(bi * M + m) * N + n] = s;
      }
  return [out];
};

// ---- embedding ----

export const embedding: Ref<"embedding"> = ([ids, weight], p) => {
  const out = f64(p.n * p.C);
  for (let i = 0; i < p.n; i++) {
    const id = ids![i];
    if (id >= 0 && id < p.V) for (let c = 0; c < p.C; c++) out[i * p.C + c] = weight![id * p.C + c];
  }
  return [out];
};
export const embeddingBackward: Ref<"embedding_backward"> = ([ids, dout], p, init) => {
  const dw = init ? Float64Array.from(init[0]) : f64(p.V * p.C);
  for (let i = 0; i < p.n; i++) {
    const id = ids![i];
    if (id >= 0 && id < p.V) for (let c = 0; c < p.C; c++) dw[id * p.C + c] += dout![i * p.C + c];
  }
  return [dw];
};

// ---- normalization ----

export const layerNorm: Ref<"layer_norm"> = ([x, w, b], p) => {
  const { rows, C } = p;
  const out = f64(rows * C), mean = f64(rows), rstd = f64(rows);
  for (let r = 0; r < rows; r++) {
    let m = 0, v = 0;
    for (let c = 0; c < C; c++) m += x![r * C + c];
    m /= C;
    for (let c = 0; c < C; c++) v += (x![r * C + c] - m) ** 2;
    const rs = 1 / Math.sqrt(v / C + p.eps);
    for (let c = 0; c < C; c++) out[r * C + c] = (x![r * C + c] - m) * rs * w![c] + b![c];
    mean[r] = m;
    rstd[r] = rs;
  }
  return [out, mean, rstd];
};
export const layerNormBackward: Ref<"layer_norm_backward"> = ([dout, x, w, mean, rstd], p) => {
  const { rows, C } = p;
  const dx = f64(rows * C), dw = f64(C), db = f64(C);
  for (let r = 0; r < rows; r++) {
    const xhat = (c: number) => (x![r * C + c] - mean![r]) * rstd![r];
    let mg = 0, mgx = 0;
    for (let c = 0; c < C; c++) {
      const g = dout![r * C + c] * w![c];
      mg += g / C;
      mgx += (g * xhat(c)) / C;
    }
    for (let c = 0; c < C; c++) {
      const g = dout![r * C + c] * w![c];
      dx[r * C + c] = rstd![r] * (g - mg - xhat(c) * mgx);
      dw[c] += dout![r * C + c] * xhat(c);
      db[c] += dout![r * C + c];
    }
  }
  return [dx, dw, db];
};
export const rmsNorm: Ref<"rms_norm"> = ([x, w], p) => {
  const { rows, C } = p;
  const out = f64(rows * C), rstd = f64(rows);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x![r * C + c] ** 2;
    const rs = 1 / Math.sqrt(ss / C + p.eps);
    for (let c = 0; c < C; c++) out[r * C + c] = x![r * C + c] * rs * w![c];
    rstd[r] = rs;
  }
  return [out, rstd];
};
export const rmsNormBackward: Ref<"rms_norm_backward"> = ([dout, x, w, rstd], p) => {
  const { rows, C } = p;
  const dx = f64(rows * C), dw = f64(C);
  for (let r = 0; r < rows; r++) {
    let mgx = 0;
    for (let c = 0; c < C; c++) mgx += (dout![r * C + c] * w![c] * x![r * C + c] * rstd![r]) / C;
    for (let c = 0; c < C; c++) {
      const xhat = x![r * C + c] * rstd![r];
      dx[r * C + c] = rstd![r] * (dout![r * C + c] * w![c] - xhat * mgx);
      dw[c] += dout![r * C + c] * xhat;
    }
  }
  return [dx, dw];
};

// ---- rope ----

function rotate(x: Float64Array, p: KernelParams<"rope">, sign: 1 | -1): Float64Array {
  const { B, T, H, D } = p, half = D / 2;
  const out = f64(B * T * H * D);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++)
        for (let i = 0; i < half; i++) {
          const theta = (p.offset + t) * Math.pow(p.theta, (-2 * i) / D);
          const c = Math.cos(theta), s = sign * Math.sin(theta);
          const base = ((b * T + t) * H + h) * D;
          const x1 = x[base + i], x2 = x[base + i + half];
          out[base + i] = x1 * c - x2 * s;
          out[base + i + half] = x2 * c + x1 * s;
        }
  return out;
}
export const rope: Ref<"rope"> = ([x], p) => [rotate(x!, p, 1)];
export const ropeBackward: Ref<"rope_backward"> = ([dout], p) => [rotate(dout!, p, -1)];

// ---- attention ----

type AttnParams = KernelParams<"attention">;
/** Element offsets of q[b, t, h, 0] and k/v[b, j, g, 0] (kernels.ts: strided views, 0 = packed). */
function attnLayout(p: AttnParams) {
  const { T, S, H, Hkv, D } = p;
  const qRow = p.qRow || H * D, kvRow = p.kvRow || Hkv * D;
  return {
    q: (b: number, t: number, h: number) => (p.qOff ?? 0) + (b * T + t) * qRow + h * D,
    k: (b: number, j: number, g: number) => (p.kOff ?? 0) + (b * S + j) * kvRow + g * D,
    v: (b: number, j: number, g: number) => (p.vOff ?? 0) + (b * S + j) * kvRow + g * D,
  };
}
/** scores s[j] (−inf where masked) of query (b, t, h) */
function scores(q: Float64Array, k: Float64Array, p: AttnParams, b: number, t: number, h: number): number[] {
  const { T, S, H, Hkv, D } = p, g = Math.floor(h / (H / Hkv)), at = attnLayout(p);
  const s: number[] = [];
  for (let j = 0; j < S; j++) {
    if (p.causal && j > t + S - T) {
      s.push(-Infinity);
      continue;
    }
    let d = 0;
    for (let e = 0; e < D; e++) d += q[at.q(b, t, h) + e] * k[at.k(b, j, g) + e];
    s.push(p.scale * d);
  }
  return s;
}
const logSumExp = (s: ArrayLike<number>) => {
  const m = maxOf(s);
  if (m === -Infinity) return -Infinity;
  let acc = 0;
  for (let i = 0; i < s.length; i++) acc += Math.exp(s[i] - m);
  return m + Math.log(acc);
};

export const attention: Ref<"attention"> = ([q, k, v], p) => {
  const { B, T, S, H, Hkv, D } = p, at = attnLayout(p);
  const out = f64(B * T * H * D), lse = f64(B * H * T);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let t = 0; t < T; t++) {
        const s = scores(q!, k!, p, b, t, h), l = logSumExp(s), g = Math.floor(h / (H / Hkv));
        lse[(b * H + h) * T + t] = l;
        for (let j = 0; j < S; j++) {
          if (s[j] === -Infinity) continue;
          const pj = Math.exp(s[j] - l);
          for (let e = 0; e < D; e++) out[((b * T + t) * H + h) * D + e] += pj * v![at.v(b, j, g) + e];
        }
      }
  return [out, lse];
};
/** dq, dk, dv written into their outputs' starting contents (`init`) at the strided positions, the rest kept. */
export const attentionBackward: Ref<"attention_backward"> = ([dout, q, k, v, out, lse], p, init) => {
  const { B, T, S, H, Hkv, D, scale } = p, at = attnLayout(p);
  const [dq, dk, dv] = init ?? [f64(B * T * H * D), f64(B * S * Hkv * D), f64(B * S * Hkv * D)];
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) dq.fill(0, at.q(b, t, h), at.q(b, t, h) + D);
    for (let j = 0; j < S; j++)
      for (let g = 0; g < Hkv; g++) {
        dk.fill(0, at.k(b, j, g), at.k(b, j, g) + D);
        dv.fill(0, at.v(b, j, g), at.v(b, j, g) + D);
      }
  }
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let t = 0; t < T; t++) {
        const g = Math.floor(h / (H / Hkv)), oo = ((b * T + t) * H + h) * D, qo = at.q(b, t, h);
        const s = scores(q!, k!, p, b, t, h), l = lse![(b * H + h) * T + t];
        let delta = 0;
        for (let e = 0; e < D; e++) delta += dout![oo + e] * out![oo + e];
        for (let j = 0; j < S; j++) {
          if (s[j] === -Infinity) continue;
          const ko = at.k(b, j, g), vo = at.v(b, j, g), pj = Math.exp(s[j] - l);
          let dp = 0;
          for (let e = 0; e < D; e++) dp += dout![oo + e] * v![vo + e];
          const ds = pj * (dp - delta);
          for (let e = 0; e < D; e++) {
            dv[vo + e] += pj * dout![oo + e];
            dq[qo + e] += scale * ds * k![ko + e];
            dk[ko + e] += scale * ds * q![qo + e];
          }
        }
      }
  return [dq, dk, dv];
};

// ---- cross-entropy ----

const validTarget = (t: number, p: { V: number; ignoreIndex: number }) => t !== p.ignoreIndex && t >= 0 && t < p.V;
export const crossEntropy: Ref<"cross_entropy"> = ([logits, targets], p) => {
  const loss = f64(p.N), lse = f64(p.N);
  for (let i = 0; i < p.N; i++) {
    const row = logits!.subarray(i * p.V, (i + 1) * p.V);
    lse[i] = logSumExp(row);
    const t = targets![i];
    loss[i] = validTarget(t, p) ? lse[i] - row[t] : 0;
  }
  return [loss, lse];
};
export const crossEntropyBackward: Ref<"cross_entropy_backward"> = ([logits, targets, lse, dloss], p) => {
  const d = f64(p.N * p.V);
  for (let i = 0; i < p.N; i++) {
    const t = targets![i];
    if (!validTarget(t, p)) continue;
    for (let v = 0; v < p.V; v++) d[i * p.V + v] = dloss![i] * (Math.exp(logits![i * p.V + v] - lse![i]) - (v === t ? 1 : 0));
  }
  return [d];
};

// ---- optimizer ----

export const adamw: Ref<"adamw"> = ([grad, gradNormSq], p, init) => {
  const param = Float64Array.from(init![0]), m = Float64Array.from(init![1]), v = Float64Array.from(init![2]);
  const clip = p.maxNorm > 0 ? Math.min(1, p.maxNorm / (Math.sqrt(gradNormSq![0]) + 1e-6)) : 1;
  const bc1 = 1 - p.beta1 ** p.step, bc2 = 1 - p.beta2 ** p.step;
  for (let i = 0; i < p.n; i++) {
    const g = grad![i] * clip;
    param[i] -= p.lr * p.weightDecay * param[i];
    m[i] = p.beta1 * m[i] + (1 - p.beta1) * g;
    v[i] = p.beta2 * v[i] + (1 - p.beta2) * g * g;
    param[i] -= (p.lr * (m[i] / bc1)) / (Math.sqrt(v[i] / bc2) + p.eps);
  }
  return [param, m, v];
};

// ---- dtype cast ----

/**
 * v rounded to a binary float format with `mant` fraction bits and exponents >= minExp (subnormals
 * below), ties to even, ±inf past max: plain float64 arithmetic, no bit tricks (the backends use those).
 */
function roundTo(v: number, mant: number, minExp: number, max: number): number {
  if (!Number.isFinite(v) || v === 0) return v;
  const e = Math.max(Math.floor(Math.log2(Math.abs(v))), minExp);
  // ulp = 2^(e - mant); correct log2's rounding at exact powers of two
  let ulp = 2 ** (e - mant);
  if (Math.abs(v) >= 2 ** (e + 1)) ulp *= 2;
  else if (e > minExp && Math.abs(v) < 2 ** e) ulp /= 2;
  const q = v / ulp; // exact: v has at most 24 significant bits
  let r = Math.floor(q);
  const frac = q - r;
  if (frac > 0.5 || (frac === 0.5 && r % 2 !== 0)) r += 1;
  const out = r * ulp;
  // overflow: values at or past max + ulp/2 (after rounding, above max) are inf
  return Math.abs(out) > max ? Math.sign(v) * Infinity : out === 0 ? (v < 0 ? -0 : 0) : out;
}
const F16_MAX = 65504;
const BF16_MAX = (2 - 2 ** -7) * 2 ** 127;
/** x's values in the cast's destination dtype (codes as CAST_DTYPES: 0 f32, 1 f16, 2 bf16) */
export const cast: Ref<"cast"> = ([x], p) =>
  [map(x!, p.n, (v) => (p.dst === 1 ? roundTo(v, 10, -14, F16_MAX) : p.dst === 2 ? roundTo(v, 7, -126, BF16_MAX) : v))];

/** Every kernel's oracle, by kernel name (a new kernel does not compile until it has one). */
export const REFERENCE: { [K in KernelName]: Ref<K> } = {
  fill, add, sub, mul, div, affine, pow, exp, log, sqrt, tanh, sigmoid, relu,
  relu_backward: reluBackward, gelu,
  gelu_with_grad: geluWithGrad, silu, silu_backward: siluBackward,
  dropout, dropout_backward: dropoutBackward, copy, copy_backward: copyBackward, sum, max,
  sum_squares: sumSquares, softmax, softmax_backward: softmaxBackward, matmul, embedding,
  embedding_backward: embeddingBackward, layer_norm: layerNorm, layer_norm_backward: layerNormBackward,
  rms_norm: rmsNorm, rms_norm_backward: rmsNormBackward, rope, rope_backward: ropeBackward, attention,
  attention_backward: attentionBackward, cross_entropy: crossEntropy,
  cross_entropy_backward: crossEntropyBackward, adamw, cast,
};
