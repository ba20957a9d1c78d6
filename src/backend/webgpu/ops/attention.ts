// WebGPU launches of attention (one thread per query row; or, for at most tuning.attentionRows
// rows, as when decoding, one workgroup per row: attention_row) and attention_backward: delta =
// Σ dout·out into a scratch buffer, then dq (one thread per query row) and dk, dv (one per key row).
import type { KernelParams } from "../../kernels.ts";
import { f, grid1d, type KernelTable, pack, u } from "../launch.ts";

const WG = 64;

/** The shader's Params; dvIn = 1 when dk and dv are one buffer (then dv goes through dk's binding). */
const params = (p: KernelParams<"attention">, dvIn = 0) =>
  pack(
    u(p.B), u(p.T), u(p.S), u(p.H), u(p.Hkv), u(p.D), f(p.scale), u(p.causal),
    u(p.qRow || p.H * p.D), u(p.kvRow || p.Hkv * p.D), u(p.qOff ?? 0), u(p.kOff ?? 0), u(p.vOff ?? 0), u(dvIn),
  );

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
    const packed = (p.kvRow || p.Hkv * p.D) === p.Hkv * p.D && !p.kOff && !p.vOff;
    if (rows > 0) {
      const delta = ctx.temp(rows * 4);
      ctx.launch("attention", "attention_backward_delta", [dout!, out!, delta], P, grid1d(rows, WG));
      ctx.launch("attention", "attention_backward", [dout!, q!, k!, v!, lse!, delta, dq], P, grid1d(rows, WG));
      const keys = p.B * p.S * p.Hkv;
      const dvIn = dk === dv ? 1 : 0;
      const dvBinding = dvIn ? ctx.temp(4) : dv;
      if (keys > 0) ctx.launch("attention", "attention_backward_dkv", [dout!, q!, k!, v!, lse!, delta, dk, dvBinding], params(p, dvIn), grid1d(keys, WG));
    } else if (p.B * p.S * p.Hkv * p.D > 0 && packed) {
      ctx.launch("elementwise", "fill", [dk], pack(u(p.B * p.S * p.Hkv * p.D), f(0)), grid1d(p.B * p.S * p.Hkv * p.D, 256));
      ctx.launch("elementwise", "fill", [dv], pack(u(p.B * p.S * p.Hkv * p.D), f(0)), grid1d(p.B * p.S * p.Hkv * p.D, 256));
    } else if (p.B * p.S * p.Hkv * p.D > 0) {
      // no query rows: dk, dv are zero; the dkv pass writes them (its query loop is empty)
      const dvIn = dk === dv ? 1 : 0;
      const none = ctx.temp(4);
      ctx.launch("attention", "attention_backward_dkv", [dout!, q!, k!, v!, none, none, dk, dvIn ? ctx.temp(4) : dv], params(p, dvIn), grid1d(p.B * p.S * p.Hkv, WG));
    }
  },
};
