// Attention: fused scaled-dot-product attention (causal or not, grouped-query heads, KV-cache
// offset) and rotary position embeddings (Hugging Face "rotate half"). Layout is [B, T, H, D]:
// what a projection's output reshapes to, so no transposes are needed around the kernel.

import type { Tensor } from "../tensor/tensor.ts";
import { formatShape } from "../tensor/shape.ts";
import { record } from "../autograd/tape.ts";
import { alloc, backendOf, launch } from "./dispatch.ts";
import { checkFloat } from "./elementwise.ts";
import { saveForBackward } from "./autocast.ts";
import type { KernelParams } from "../backend/kernels.ts";

export interface AttentionOptions {
  causal?: boolean;
  /** default 1/sqrt(D) */
  scale?: number;
}

/**
 * softmax(q·kᵀ·scale + causal mask)·v per head. q [B, T, H, D]; k, v [B, S, Hkv, D] with H a
 * multiple of Hkv. With causal and S > T, query t sits at position t + S − T (KV-cache decode).
 * Returns [B, T, H, D].
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, { causal = true, scale }: AttentionOptions = {}): Tensor {
  const backend = backendOf("attention", [q, k, v]);
  for (const t of [q, k, v]) checkFloat("attention", t);
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) {
    throw new Error(`[attention] q, k, v must be [B, T, H, D]; got ${formatShape(q.shape)}, ${formatShape(k.shape)}, ${formatShape(v.shape)}`);
  }
  const [B, T, H, D] = q.shape;
  const [Bk, S, Hkv, Dk] = k.shape;
  if (Bk !== B || Dk !== D || v.shape.some((d, i) => d !== k.shape[i])) {
    throw new Error(`[attention] k ${formatShape(k.shape)} and v ${formatShape(v.shape)} do not fit q ${formatShape(q.shape)}`);
  }
  if (H % Hkv !== 0) throw new Error(`[attention] ${H} query heads are not a multiple of ${Hkv} kv heads`);
  if (causal && S < T) throw new Error(`[attention] causal attention needs S >= T, got S=${S}, T=${T}`);
  const s = scale ?? 1 / Math.sqrt(D);
  const out = alloc(backend, [B, T, H, D]);
  const lse = alloc(backend, [B, H, T]);
  launch("attention", [q, k, v], [out, lse], { B, T, S, H, Hkv, D, scale: s, causal: causal ? 1 : 0 });
  const save = (t: Tensor) => saveForBackward(t, [q, k, v]);
  const result = record(out, "attention", [q, k, v], { q: save(q), k: save(k), v: save(v), out: save(out), lse, scale: s, causal });
  if (!result.node) lse.dispose(); // only the backward reads lse
  return result;
}

export interface QkvAttentionOptions extends AttentionOptions {
  /** query heads */
  nHead: number;
  /** key/value heads (default nHead) */
  nKvHead?: number;
}

/**
 * attention() over the packed output of a fused q/k/v projection, qkv [B, T, (H + 2·Hkv)·D] with
 * the q, k, v columns in that order (GPT-2's c_attn; flash-attn's "qkvpacked"): the kernel reads
 * q, k, v in place at the row stride, and the backward writes dq, dk, dv straight into one dqkv
 * [B, T, (H + 2·Hkv)·D], without split copies, zero fill or accumulation. Self-attention only
 * (S = T). Returns [B, T, H, D], the same as attention() on the split and reshaped q, k, v.
 */
export function qkvAttention(qkv: Tensor, { nHead: H, nKvHead, causal = true, scale }: QkvAttentionOptions): Tensor {
  const backend = backendOf("qkvAttention", [qkv]);
  checkFloat("qkvAttention", qkv);
  const Hkv = nKvHead ?? H;
  const width = qkv.shape[qkv.rank - 1];
  if (qkv.rank !== 3 || !(H > 0) || !(Hkv > 0) || H % Hkv !== 0 || width % (H + 2 * Hkv) !== 0) {
    throw new Error(`[qkvAttention] qkv must be [B, T, (nHead + 2·nKvHead)·D] with nHead a multiple of nKvHead; got ${formatShape(qkv.shape)}, nHead=${H}, nKvHead=${Hkv}`);
  }
  const [B, T] = qkv.shape;
  const D = width / (H + 2 * Hkv);
  const s = scale ?? 1 / Math.sqrt(D);
  const params = qkvParams(B, T, H, Hkv, D, s, causal);
  const out = alloc(backend, [B, T, H, D]);
  const lse = alloc(backend, [B, H, T]);
  launch("attention", [qkv, qkv, qkv], [out, lse], params);
  const save = (t: Tensor) => saveForBackward(t, [qkv]);
  const result = record(out, "qkv_attention", [qkv], { qkv: save(qkv), out: save(out), lse, params });
  if (!result.node) lse.dispose();
  return result;
}

/** The attention kernels' params for q, k, v as column ranges of one [B, T, (H + 2·Hkv)·D] tensor. */
export function qkvParams(B: number, T: number, H: number, Hkv: number, D: number, scale: number, causal: boolean): KernelParams<"attention"> {
  const row = (H + 2 * Hkv) * D;
  return {
    B, T, S: T, H, Hkv, D, scale, causal: causal ? 1 : 0,
    qRow: row, kvRow: row, qOff: 0, kOff: H * D, vOff: (H + Hkv) * D,
  };
}

/** Rotary embeddings on x [B, T, H, D] for positions offset..offset+T−1 (rotate-half convention). */
export function rope(x: Tensor, { theta = 10000, offset = 0 }: { theta?: number; offset?: number } = {}): Tensor {
  const backend = backendOf("rope", [x]);
  checkFloat("rope", x);
  if (x.rank !== 4 || x.shape[3] % 2 !== 0) throw new Error(`[rope] x must be [B, T, H, D] with D even, got ${x.describe()}`);
  const [B, T, H, D] = x.shape;
  const out = alloc(backend, x.shape);
  launch("rope", [x], [out], { B, T, H, D, theta, offset });
  return record(out, "rope", [x], { theta, offset });
}
