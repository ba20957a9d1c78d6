// The kernel list: every kernel that every backend implements, with its inputs, outputs and
// params, in that order (the order of WGSL bindings and of WASM export arguments too). This is
// the contract between src/ops (which calls kernels) and src/backend/* (which runs them); the
// float64 oracle for each kernel is tests/reference.ts, and tests/backend/*.test.ts runs every
// kernel on every available backend against it.
//
// Conventions. All tensors are contiguous, row-major, 4-byte elements: f32, except the i32 token ids
// and targets (the `ids` of embedding*, the `targets` of cross_entropy*), and 16-bit storage (f16,
// bf16: two per 4-byte word, low half first; src/tensor/dtype.ts) where a kernel says so (cast). Shapes use llm.c letters (B, T, C, V, H, D; M, N, K for matmul).
// Params are plain numbers (booleans are 0/1); a param named with a trailing "?" may be left out
// (it is then 0). An output is written in full (never accumulated)
// unless its doc says "+=". Inputs named with a trailing "?" are optional: the caller passes
// `null` in that slot. Outputs marked "(in place)" are read and written.

export interface KernelSpec {
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly params: readonly string[];
}

export const KERNELS = {
  // ---- elementwise (kernels/elementwise.wgsl, wasm/assembly/elementwise.ts) ----
  /** out[i] = value, i < n */
  fill: { inputs: [], outputs: ["out"], params: ["n", "value"] },
  /** out[i] = a[i % na] + b[i % nb], i < n (na and nb divide n: same shape, scalar, or a trailing block) */
  add: { inputs: ["a", "b"], outputs: ["out"], params: ["n", "na", "nb"] },
  /** out[i] = a[i % na] - b[i % nb] */
  sub: { inputs: ["a", "b"], outputs: ["out"], params: ["n", "na", "nb"] },
  /** out[i] = a[i % na] * b[i % nb] */
  mul: { inputs: ["a", "b"], outputs: ["out"], params: ["n", "na", "nb"] },
  /** out[i] = a[i % na] / b[i % nb] */
  div: { inputs: ["a", "b"], outputs: ["out"], params: ["n", "na", "nb"] },
  /** out[i] = x[i] * alpha + beta */
  affine: { inputs: ["x"], outputs: ["out"], params: ["n", "alpha", "beta"] },
  /** out[i] = x[i] ** p (p any float; x < 0 with non-integer p gives NaN, as in PyTorch) */
  pow: { inputs: ["x"], outputs: ["out"], params: ["n", "p"] },
  /** out[i] = exp(x[i]) */
  exp: { inputs: ["x"], outputs: ["out"], params: ["n"] },
  /** out[i] = ln(x[i]) */
  log: { inputs: ["x"], outputs: ["out"], params: ["n"] },
  /** out[i] = sqrt(x[i]) */
  sqrt: { inputs: ["x"], outputs: ["out"], params: ["n"] },
  /** out[i] = tanh(x[i]) */
  tanh: { inputs: ["x"], outputs: ["out"], params: ["n"] },
  /** out[i] = 1 / (1 + exp(-x[i])) */
  sigmoid: { inputs: ["x"], outputs: ["out"], params: ["n"] },
  /** out[i] = max(x[i], 0) */
  relu: { inputs: ["x"], outputs: ["out"], params: ["n"] },
  /** dx[i] = x[i] > 0 ? dout[i] : 0 */
  relu_backward: { inputs: ["x", "dout"], outputs: ["dx"], params: ["n"] },
  /** GPT-2's tanh GELU: out = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) */
  gelu: { inputs: ["x"], outputs: ["out"], params: ["n"] },
  /**
   * gelu in training: out = gelu(x) (the same values as `gelu`) and its derivative in one pass,
   * dgelu = gelu'(x) = s + 2x·s(1 − s)·√(2/π)(1 + 3·0.044715·x²), s = 0.5·(1 + tanh(√(2/π)(x + 0.044715·x³))),
   * so that the backward is dx = dout · dgelu (a `mul`), with no exp or division.
   */
  gelu_with_grad: { inputs: ["x"], outputs: ["out", "dgelu"], params: ["n"] },
  /** out = x · sigmoid(x) */
  silu: { inputs: ["x"], outputs: ["out"], params: ["n"] },
  /** dx = dout · s · (1 + x·(1 − s)), s = sigmoid(x) */
  silu_backward: { inputs: ["x", "dout"], outputs: ["dx"], params: ["n"] },
  /**
   * Inverted dropout with a counter-based RNG: keep element i iff u(i) >= p, where
   * u(i) = (pcg(i + pcg(seed)) >>> 8) / 2^24 and pcg is the 32-bit PCG hash
   *   s = x·747796405 + 2891336453; w = ((s >>> ((s >>> 28) + 4)) ^ s)·277803737; pcg = (w >>> 22) ^ w
   * (all u32 arithmetic, wrapping). out = keep ? x / (1 − p) : 0. The same (seed, p) in
   * dropout_backward regenerates the mask, so no mask is stored.
   */
  dropout: { inputs: ["x"], outputs: ["out"], params: ["n", "p", "seed"] },
  /** dx = keep ? dout / (1 − p) : 0, with the mask of dropout(seed, p) */
  dropout_backward: { inputs: ["dout"], outputs: ["dx"], params: ["n", "p", "seed"] },

  // ---- movement (kernels/copy.wgsl, wasm/assembly/copy.ts) ----
  /**
   * Strided gather into a contiguous output of shape [d0..d(rank-1)] (rank <= 6; unused dims 1):
   * out[i0,..,i5] = x[offset + Σ_j i_j·s_j]. Serves transpose/permute, expand (stride 0) and
   * slicing. n = Π d.
   */
  copy: {
    inputs: ["x"], outputs: ["out"],
    params: ["n", "rank", "offset", "d0", "d1", "d2", "d3", "d4", "d5", "s0", "s1", "s2", "s3", "s4", "s5"],
  },
  /**
   * The adjoint of copy for injective maps (no stride 0): dx[offset + Σ_j i_j·s_j] += dout[i0,..,i5].
   * dx is "+=" (the caller zero-fills it first).
   */
  copy_backward: {
    inputs: ["dout"], outputs: ["dx"],
    params: ["n", "rank", "offset", "d0", "d1", "d2", "d3", "d4", "d5", "s0", "s1", "s2", "s3", "s4", "s5"],
  },

  // ---- reductions (kernels/reduce.wgsl, wasm/assembly/reduce.ts) ----
  /** x viewed as [outer, len, inner]: out[o, i] = Σ_l x[o, l, i] */
  sum: { inputs: ["x"], outputs: ["out"], params: ["outer", "len", "inner"] },
  /** x viewed as [outer, len, inner]: out[o, i] = max_l x[o, l, i]; idx[o, i] = first argmax l (as f32) */
  max: { inputs: ["x"], outputs: ["out", "idx"], params: ["outer", "len", "inner"] },
  /** out[0] = Σ_i x[i]², or out[0] += that when accumulate = 1 (a global grad-norm over many tensors) */
  sum_squares: { inputs: ["x"], outputs: ["out"], params: ["n", "accumulate"] },

  // ---- softmax (kernels/softmax.wgsl, wasm/assembly/softmax.ts) ----
  /** out[r, :] = softmax(x[r, :]) over cols (max-subtracted) */
  softmax: { inputs: ["x"], outputs: ["out"], params: ["rows", "cols"] },
  /** dx[r, c] = out[r, c] · (dout[r, c] − Σ_c' dout[r, c']·out[r, c']) */
  softmax_backward: { inputs: ["out", "dout"], outputs: ["dx"], params: ["rows", "cols"] },

  // ---- matmul (kernels/matmul.wgsl, wasm/assembly/matmul.ts) ----
  /**
   * out[b, m, n] = Σ_k A[b, m, k]·B[b, k, n] (+ bias[n] when hasBias), b < batch.
   * A[b] is a at element offset b·strideA, shaped [M, K], or [K, M] read transposed when transA.
   * B[b] is b at offset b·strideB, shaped [K, N], or [N, K] read transposed when transB.
   * strideA/strideB = 0 broadcasts one matrix over the batch. out is contiguous [batch, M, N].
   * B may be 16-bit storage: dtypeB (a CAST_DTYPES code; absent: 0, f32) says which, and strideB
   * counts its elements; it is widened exactly to f32 as it is read, and the arithmetic is f32.
   */
  matmul: {
    inputs: ["a", "b", "bias?"], outputs: ["out"],
    params: ["batch", "M", "N", "K", "transA", "transB", "strideA", "strideB", "hasBias", "dtypeB?"],
  },

  // ---- embedding (kernels/embedding.wgsl, wasm/assembly/embedding.ts) ----
  /**
   * out[i, :] = weight[ids[i], :] for i < n; ids outside [0, V) give a zero row. The weight may be
   * 16-bit storage (dtype: a CAST_DTYPES code; absent: f32), widened exactly into the f32 out.
   */
  embedding: { inputs: ["ids", "weight"], outputs: ["out"], params: ["n", "V", "C", "dtype?"] },
  /** dweight[ids[i], :] += dout[i, :] (dweight is "+="; the caller zero-fills it); ids outside [0, V) are skipped */
  embedding_backward: { inputs: ["ids", "dout"], outputs: ["dweight"], params: ["n", "V", "C"] },

  // ---- normalization (kernels/layer_norm.wgsl, kernels/rms_norm.wgsl; wasm/assembly/layer_norm.ts, rms_norm.ts) ----
  /**
   * Per row r of x [rows, C]: mean = Σx/C, rstd = 1/sqrt(Σ(x−mean)²/C + eps),
   * out = (x − mean)·rstd·weight + bias. Also writes mean[r] and rstd[r] for the backward.
   */
  layer_norm: { inputs: ["x", "weight", "bias"], outputs: ["out", "mean", "rstd"], params: ["rows", "C", "eps"] },
  /**
   * xhat = (x − mean)·rstd, g = dout·weight:
   * dx = rstd·(g − mean_c(g) − xhat·mean_c(g·xhat)); dweight = Σ_r dout·xhat; dbias = Σ_r dout.
   */
  layer_norm_backward: {
    inputs: ["dout", "x", "weight", "mean", "rstd"], outputs: ["dx", "dweight", "dbias"], params: ["rows", "C"],
  },
  /** Per row: rstd = 1/sqrt(Σx²/C + eps); out = x·rstd·weight. Also writes rstd[r]. */
  rms_norm: { inputs: ["x", "weight"], outputs: ["out", "rstd"], params: ["rows", "C", "eps"] },
  /** xhat = x·rstd, g = dout·weight: dx = rstd·(g − xhat·mean_c(g·xhat)); dweight = Σ_r dout·xhat */
  rms_norm_backward: { inputs: ["dout", "x", "weight", "rstd"], outputs: ["dx", "dweight"], params: ["rows", "C"] },

  // ---- rotary position embedding (kernels/rope.wgsl, wasm/assembly/rope.ts) ----
  /**
   * Hugging Face "rotate half" RoPE on x [B, T, H, D] (D even, half = D/2). For position
   * p = offset + t and i < half: θ = p · theta^(−2i/D), c = cos θ, s = sin θ,
   * out[.., i] = x[i]·c − x[i+half]·s; out[.., i+half] = x[i+half]·c + x[i]·s.
   */
  rope: { inputs: ["x"], outputs: ["out"], params: ["B", "T", "H", "D", "theta", "offset"] },
  /** The transpose rotation: dx[i] = dout[i]·c + dout[i+half]·s; dx[i+half] = dout[i+half]·c − dout[i]·s */
  rope_backward: { inputs: ["dout"], outputs: ["dx"], params: ["B", "T", "H", "D", "theta", "offset"] },

  // ---- attention (kernels/attention.wgsl, wasm/assembly/attention.ts) ----
  /**
   * Fused scaled-dot-product attention with grouped-query heads.
   * q [B, T, H, D], k and v [B, S, Hkv, D] (H a multiple of Hkv; head h reads kv head h / (H/Hkv)).
   * s[t, j] = scale·q[t]·k[j]; when causal, query t sits at absolute position t + S − T and
   * sees keys j <= t + S − T (so S = T is ordinary causal training, S > T is KV-cache decode).
   * out[b, t, h, :] = Σ_j softmax_j(s)·v[j]; lse[b, h, t] = log Σ_j exp(s[t, j]) (for the backward).
   * q, k and v may be strided views (the q/k/v columns of a fused projection's [B, T, (H + 2·Hkv)·D]
   * output): q[b, t, h, d] is at qOff + (b·T + t)·qRow + h·D + d, k[b, j, g, d] at
   * kOff + (b·S + j)·kvRow + g·D + d, v the same with vOff; qRow = 0 means H·D and kvRow = 0 means
   * Hkv·D (packed). out and lse are always packed.
   */
  attention: {
    inputs: ["q", "k", "v"], outputs: ["out", "lse"],
    params: ["B", "T", "S", "H", "Hkv", "D", "scale", "causal", "qRow?", "kvRow?", "qOff?", "kOff?", "vOff?"],
  },
  /**
   * p = exp(s − lse); dv[j] = Σ_t p[t, j]·dout[t]; dp = dout·vᵀ; delta[t] = Σ_d dout[t]·out[t];
   * ds = p·(dp − delta); dq = scale·ds·k; dk = scale·dsᵀ·q (dk, dv summed over the heads sharing a kv head).
   * dout and out are packed; q, k, v are read with the forward's strides and offsets, and dq, dk, dv
   * are written with them (dq like q, dk like k, dv like v), other elements of their buffers left as
   * they are: dq, dk and dv may be one buffer, the gradient of the fused [B, T, (H + 2·Hkv)·D].
   */
  attention_backward: {
    inputs: ["dout", "q", "k", "v", "out", "lse"], outputs: ["dq", "dk", "dv"],
    params: ["B", "T", "S", "H", "Hkv", "D", "scale", "causal", "qRow?", "kvRow?", "qOff?", "kOff?", "vOff?"],
  },

  // ---- cross-entropy (kernels/cross_entropy.wgsl, wasm/assembly/cross_entropy.ts) ----
  /**
   * logits [N, V], targets (i32) [N]: lse[i] = log Σ_v exp(logits[i, v]);
   * loss[i] = lse[i] − logits[i, targets[i]], or 0 (and lse still written) when targets[i] is
   * ignoreIndex or outside [0, V).
   */
  cross_entropy: { inputs: ["logits", "targets"], outputs: ["loss", "lse"], params: ["N", "V", "ignoreIndex"] },
  /** dlogits[i, v] = dloss[i]·(exp(logits[i, v] − lse[i]) − [v = targets[i]]); a zero row for ignored targets */
  cross_entropy_backward: {
    inputs: ["logits", "targets", "lse", "dloss"], outputs: ["dlogits"], params: ["N", "V", "ignoreIndex"],
  },

  // ---- dtype cast (kernels/cast.wgsl + kernels/half.wgsl, wasm/assembly/cast.ts) ----
  /**
   * out[i] = x[i] converted from dtype `src` to dtype `dst` (codes: CAST_DTYPES), i < n. Widening
   * (f16/bf16 → f32) is exact; narrowing rounds to nearest, ties to even (as PyTorch), overflows to
   * ±inf; f16 keeps subnormals and a NaN's sign and payload (quiet); any NaN becomes bf16 0x7fc0
   * (PyTorch's c10::BFloat16). f16 ↔ bf16 goes through f32 (one rounding). A 16-bit out with odd n
   * gets a zero upper half in its last word.
   */
  cast: { inputs: ["x"], outputs: ["out"], params: ["n", "src", "dst"] },

  // ---- optimizer (kernels/adamw.wgsl, wasm/assembly/adamw.ts) ----
  /**
   * One fused AdamW step (PyTorch torch.optim.AdamW semantics) on n elements, param, m, v in place.
   * g = grad·clip where clip = maxNorm > 0 ? min(1, maxNorm / (sqrt(gradNormSq[0]) + 1e-6)) : 1
   * (gradNormSq is ignored, and may be null, when maxNorm = 0);
   * param −= lr·weightDecay·param; m = beta1·m + (1−beta1)·g; v = beta2·v + (1−beta2)·g²;
   * param −= lr·(m / (1 − beta1^step)) / (sqrt(v / (1 − beta2^step)) + eps).
   */
  adamw: {
    inputs: ["grad", "gradNormSq?"], outputs: ["param", "m", "v"],
    params: ["n", "lr", "beta1", "beta2", "eps", "weightDecay", "step", "maxNorm"],
  },
} as const satisfies Record<string, KernelSpec>;

/** The dtypes of the cast kernel's `src` and `dst` params: the code is the index. */
export const CAST_DTYPES = ["f32", "f16", "bf16"] as const;

export type KernelName = keyof typeof KERNELS;
export const KERNEL_NAMES = Object.keys(KERNELS) as KernelName[];

type ParamNames<K extends KernelName> = (typeof KERNELS)[K]["params"][number];
/** The params object of kernel K: one number per declared param name ("name?" ones optional). */
export type KernelParams<K extends KernelName> =
  & { [P in ParamNames<K> as P extends `${string}?` ? never : P]: number }
  & { [P in ParamNames<K> as P extends `${infer Name}?` ? Name : never]?: number };

/** Params in declaration order, for backends that pass them positionally (WASM exports, WGSL uniforms). */
export function paramList<K extends KernelName>(kernel: K, params: KernelParams<K>): number[] {
  const names = KERNELS[kernel].params as readonly string[];
  const values = params as Record<string, number>;
  return names.map((name) => {
    if (name.endsWith("?")) return values[name.slice(0, -1)] ?? 0;
    const v = values[name];
    if (typeof v !== "number") {
      throw new Error(`[${kernel}] param ${name} must be a number, got ${String(v)}`);
    }
    return v;
  });
}
