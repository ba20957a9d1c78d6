// adamw: one fused AdamW step (torch.optim.AdamW semantics) on param, m, v in place, with the
// optional global-norm clip factor read from gradNormSq[0]. Scalars (clip, bias corrections) are
// computed once in f64; the element loop runs on f32x4. Reference: tests/reference.ts adamw.
import { at } from "./common";

export function adamw_f32(
  grad: usize, gradNormSq: usize, param: usize, m: usize, v: usize,
  n: i32, lr: f64, beta1: f64, beta2: f64, eps: f64, weightDecay: f64, step: f64, maxNorm: f64,
): void {
  const clip = maxNorm > 0 ? Math.min(1, maxNorm / (Math.sqrt(<f64>load<f32>(gradNormSq)) + 1e-6)) : 1;
  const bc1 = 1 - Math.pow(beta1, step), bc2 = 1 - Math.pow(beta2, step);
  const decay = <f32>(1 - lr * weightDecay);
  const stepSize = <f32>(lr / bc1);
  const invSqrtBc2 = <f32>(1 / Math.sqrt(bc2));
  const b1 = <f32>beta1, c1 = <f32>(1 - beta1), b2 = <f32>beta2, c2 = <f32>(1 - beta2);
  const cl = <f32>clip, ep = <f32>eps;
  const vdecay = f32x4.splat(decay), vstep = f32x4.splat(stepSize), vinv = f32x4.splat(invSqrtBc2);
  const vb1 = f32x4.splat(b1), vc1 = f32x4.splat(c1), vb2 = f32x4.splat(b2), vc2 = f32x4.splat(c2);
  const vcl = f32x4.splat(cl), vep = f32x4.splat(ep);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const g = f32x4.mul(v128.load(at(grad, i)), vcl);
    const mi = f32x4.add(f32x4.mul(vb1, v128.load(at(m, i))), f32x4.mul(vc1, g));
    const vi = f32x4.add(f32x4.mul(vb2, v128.load(at(v, i))), f32x4.mul(vc2, f32x4.mul(g, g)));
    const denom = f32x4.add(f32x4.mul(f32x4.sqrt(vi), vinv), vep);
    const p = f32x4.mul(v128.load(at(param, i)), vdecay);
    v128.store(at(param, i), f32x4.sub(p, f32x4.div(f32x4.mul(vstep, mi), denom)));
    v128.store(at(m, i), mi);
    v128.store(at(v, i), vi);
  }
  for (; i < n; i++) {
    const g = load<f32>(at(grad, i)) * cl;
    const mi = b1 * load<f32>(at(m, i)) + c1 * g;
    const vi = b2 * load<f32>(at(v, i)) + c2 * g * g;
    const p = load<f32>(at(param, i)) * decay;
    store<f32>(at(param, i), p - (stepSize * mi) / (Mathf.sqrt(vi) * invSqrtBc2 + ep));
    store<f32>(at(m, i), mi);
    store<f32>(at(v, i), vi);
  }
}

// adamw_list: adamw_f32 over a table of `count` segments (one optimizer step over many parameters,
// or over pieces of them, as one call: src/backend/wasm/multi_tensor.ts). A segment is 7 f64:
// grad, param, m, v (byte offsets), n, lr, weightDecay; the other scalars are shared. Each
// segment runs exactly adamw_f32, so the result is bit for bit that of one launch per parameter.
const ADAMW_SEGMENT_BYTES = 56;

export function adamw_list_f32(
  table: usize, count: i32, gradNormSq: usize, beta1: f64, beta2: f64, eps: f64, step: f64, maxNorm: f64,
): void {
  for (let i = 0; i < count; i++) {
    const e = table + <usize>i * ADAMW_SEGMENT_BYTES;
    adamw_f32(
      <usize>load<f64>(e), gradNormSq, <usize>load<f64>(e, 8), <usize>load<f64>(e, 16), <usize>load<f64>(e, 24),
      <i32>load<f64>(e, 32), load<f64>(e, 40), beta1, beta2, eps, load<f64>(e, 48), step, maxNorm,
    );
  }
}
