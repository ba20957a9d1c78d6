// Attention: fused scaled-dot-product attention (causal or not, grouped-query heads, KV-cache
// offset) and rotary position embeddings (Hugging Face "rotate half"). Layout is [B, T, H, D]:
// what a projection's output reshapes to, so no transposes are needed around the kernel.

import type { Tensor } from "../tensor/tensor.ts";
import { formatShape } from "../tensor/shape.ts";
import { record } from "../autograd/tape.ts";
import { alloc, backendOf, launch } from "./dispatch.ts";
import { checkFloat } from "./elementwise.ts";
import { saveForBackward } from "./autocast.ts";

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
