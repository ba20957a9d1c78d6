// WebGPU launches of rope and rope_backward (kernels/rope.wgsl): one thread per rotated pair. The
// (cos, sin) table for positions [0, P) is made here in float64 (P = the next power of two covering
// offset + T, so decoding token by token rebuilds it only log-many times) and cached per (D, theta, P).
import type { KernelParams } from "../../kernels.ts";
import { f, grid1d, type KernelContext, type KernelFn, type KernelTable, pack, u } from "../launch.ts";

const WG = 256;

function table(D: number, theta: number, positions: number): Float32Array {
  const half = D / 2;
  const out = new Float32Array(2 * positions * half);
  for (let i = 0; i < half; i++) {
    const freq = Math.pow(theta, (-2 * i) / D);
    for (let pos = 0; pos < positions; pos++) {
      out[2 * (pos * half + i)] = Math.cos(pos * freq);
      out[2 * (pos * half + i) + 1] = Math.sin(pos * freq);
    }
  }
  return out;
}

function rotation(entry: "rope" | "rope_backward"): KernelFn<"rope"> {
  return (ctx: KernelContext, [x], [out], p: KernelParams<"rope">) => {
    const pairs = p.B * p.T * p.H * (p.D / 2);
    if (pairs === 0) return;
    const positions = 2 ** Math.ceil(Math.log2(Math.max(p.offset + p.T, 64)));
    const cosSin = ctx.constant(`rope D=${p.D} theta=${p.theta} positions=${positions}`, () => table(p.D, p.theta, positions));
    const params = pack(u(p.B), u(p.T), u(p.H), u(p.D), f(p.theta), u(p.offset));
    ctx.launch("rope", entry, [x!, cosSin, out], params, grid1d(pairs, WG));
  };
}

export const ROPE: KernelTable<"rope" | "rope_backward"> = {
  rope: rotation("rope"),
  rope_backward: rotation("rope_backward"),
};
