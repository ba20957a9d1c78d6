// WebGPU launches of the elementwise kernels (kernels/elementwise.wgsl): one thread per element.
// Dropout's keep threshold ceil(p·2^24) and scale 1/(1 − p) are computed here in float64, so the
// mask matches the PCG definition in kernels.ts bit for bit.
import type { KernelName } from "../../kernels.ts";
import { f, grid1d, type KernelFn, type KernelTable, pack, u } from "../launch.ts";

const WG = 256;

type Unary = "exp" | "log" | "sqrt" | "tanh" | "sigmoid" | "relu" | "gelu" | "silu";
type Binary = "add" | "sub" | "mul" | "div";
type Backward = "relu_backward" | "silu_backward";

/** All unary kernels share exp's params ({n}). */
function unary(entry: Unary): KernelFn<"exp"> {
  return (ctx, [x], [out], p) => {
    if (p.n > 0) ctx.launch("elementwise", entry, [x!, out], pack(u(p.n)), grid1d(p.n, WG));
  };
}

function binary(entry: Binary): KernelFn<"add"> {
  return (ctx, [a, b], [out], p) => {
    if (p.n > 0) ctx.launch("elementwise", entry, [a!, b!, out], pack(u(p.n), u(p.na), u(p.nb)), grid1d(p.n, WG));
  };
}

function backward(entry: Backward): KernelFn<"relu_backward"> {
  return (ctx, [x, dout], [dx], p) => {
    if (p.n > 0) ctx.launch("elementwise", entry, [x!, dout!, dx], pack(u(p.n)), grid1d(p.n, WG));
  };
}

/** gelu_with_grad: x@0 out@1 dgelu@2 */
const geluWithGrad: KernelFn<"gelu_with_grad"> = (ctx, [x], [out, dgelu], p) => {
  if (p.n > 0) ctx.launch("elementwise", "gelu_with_grad", [x!, out, dgelu], pack(u(p.n)), grid1d(p.n, WG));
};

function dropout(entry: "dropout" | "dropout_backward"): KernelFn<"dropout"> {
  return (ctx, [x], [out], p) => {
    if (p.n === 0) return;
    const threshold = Math.min(2 ** 24, Math.max(0, Math.ceil(p.p * 2 ** 24)));
    const scale = p.p < 1 ? 1 / (1 - p.p) : 0;
    ctx.launch("elementwise", entry, [x!, out], pack(u(p.n), f(p.p), u(p.seed), u(threshold), f(scale)), grid1d(p.n, WG));
  };
}

export const ELEMENTWISE: KernelTable<Unary | Binary | Backward | "gelu_with_grad" | "fill" | "affine" | "pow" | "dropout" | "dropout_backward"> = {
  fill: (ctx, _, [out], p) => {
    if (p.n > 0) ctx.launch("elementwise", "fill", [out], pack(u(p.n), f(p.value)), grid1d(p.n, WG));
  },
  add: binary("add"),
  sub: binary("sub"),
  mul: binary("mul"),
  div: binary("div"),
  affine: (ctx, [x], [out], p) => {
    if (p.n > 0) ctx.launch("elementwise", "affine", [x!, out], pack(u(p.n), f(p.alpha), f(p.beta)), grid1d(p.n, WG));
  },
  pow: (ctx, [x], [out], p) => {
    if (p.n > 0) ctx.launch("elementwise", "pow", [x!, out], pack(u(p.n), f(p.p)), grid1d(p.n, WG));
  },
  exp: unary("exp"),
  log: unary("log"),
  sqrt: unary("sqrt"),
  tanh: unary("tanh"),
  sigmoid: unary("sigmoid"),
  relu: unary("relu"),
  relu_backward: backward("relu_backward"),
  gelu: unary("gelu"),
  gelu_with_grad: geluWithGrad,
  silu: unary("silu"),
  silu_backward: backward("silu_backward"),
  dropout: dropout("dropout"),
  dropout_backward: dropout("dropout_backward"),
} satisfies Partial<KernelTable<KernelName>>;
