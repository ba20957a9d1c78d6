// WebGPU launches of attention (one thread per query row; or, for at most tuning.attentionRows
// rows, as when decoding, one workgroup per row: attention_row) and attention_backward: delta =
// Σ dout·out into a scratch buffer, then dq (one thread per query row) and dk, dv (one per key row).
import type { KernelParams } from "../../kernels.ts";
import { f, grid1d, type KernelTable, pack, u } from "../launch.ts";

const WG = 64;

const params = (p: KernelParams<"attention">) =>
  pack(u(p.B), u(p.T), u(p.S), u(p.H), u(p.Hkv), u(p.D), f(p.scale), u(p.causal));

export const ATTENTION: KernelTable<"attention" | "attention_backward"> = {
  attention: (ctx, [q, k, v], [out, lse], p) => {
    const rows = p.B * p.H * p.T;
    if (rows === 0) return;
    if (rows <= ctx.tuning.attentionRows) { // few rows (decoding): a workgroup per row, keys split
      ctx.launch("attention", "attention_row", [q!, k!, v!, out, lse], params(p), grid1d(rows, 1), { RW: Math.min(ctx.tuning.rowThreads, 64) });
    } else {
      ctx.launch("attention", "attention", [q!, k!, v!, out, lse], params(p), grid1d(rows, WG));
    }
  },
  attention_backward: (ctx, [dout, q, k, v, out, lse], [dq, dk, dv], p) => {
    const rows = p.B * p.H * p.T;
    const P = params(p);
    if (rows > 0) {
      const delta = ctx.temp(rows * 4);
      ctx.launch("attention", "attention_backward_delta", [dout!, out!, delta], P, grid1d(rows, WG));
      ctx.launch("attention", "attention_backward", [dout!, q!, k!, v!, lse!, delta, dq], P, grid1d(rows, WG));
      const keys = p.B * p.S * p.Hkv;
      if (keys > 0) ctx.launch("attention", "attention_backward_dkv", [dout!, q!, k!, v!, lse!, delta, dk, dv], P, grid1d(keys, WG));
    } else if (p.B * p.S * p.Hkv * p.D > 0) {
      ctx.launch("elementwise", "fill", [dk], pack(u(p.B * p.S * p.Hkv * p.D), f(0)), grid1d(p.B * p.S * p.Hkv * p.D, 256));
      ctx.launch("elementwise", "fill", [dv], pack(u(p.B * p.S * p.Hkv * p.D), f(0)), grid1d(p.B * p.S * p.Hkv * p.D, 256));
    }
  },
};
