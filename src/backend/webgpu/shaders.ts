// THE table of WGSL sources: one file per kernel family in kernels/, imported as text, each
// compiled with kernels/common.wgsl prepended. Entry points are named after the kernel list
// (src/backend/kernels.ts). KILN_DEBUG >= 3 prints a module's source when it is first compiled.
import common from "../../../kernels/common.wgsl" with { type: "text" };
import adamw from "../../../kernels/adamw.wgsl" with { type: "text" };
import attention from "../../../kernels/attention.wgsl" with { type: "text" };
import copy from "../../../kernels/copy.wgsl" with { type: "text" };
import cross_entropy from "../../../kernels/cross_entropy.wgsl" with { type: "text" };
import elementwise from "../../../kernels/elementwise.wgsl" with { type: "text" };
import embedding from "../../../kernels/embedding.wgsl" with { type: "text" };
import layer_norm from "../../../kernels/layer_norm.wgsl" with { type: "text" };
import matmul from "../../../kernels/matmul.wgsl" with { type: "text" };
import reduce from "../../../kernels/reduce.wgsl" with { type: "text" };
import rms_norm from "../../../kernels/rms_norm.wgsl" with { type: "text" };
import rope from "../../../kernels/rope.wgsl" with { type: "text" };
import softmax from "../../../kernels/softmax.wgsl" with { type: "text" };
import { debugLevel } from "../../util/env.ts";

const FILES = {
  elementwise, copy, reduce, softmax, matmul, embedding, layer_norm, rms_norm, rope, attention, cross_entropy, adamw,
} as const;

export type ShaderFile = keyof typeof FILES;

const sources = new Map<ShaderFile, string>();

/** The full WGSL module of `file`: common.wgsl, then the family's file. */
export function shaderSource(file: ShaderFile): string {
  let src = sources.get(file);
  if (!src) {
    src = `${common}\n${FILES[file]}`;
    sources.set(file, src);
    if (debugLevel() >= 3) console.error(`// kernels/${file}.wgsl\n${src}`);
  }
  return src;
}
