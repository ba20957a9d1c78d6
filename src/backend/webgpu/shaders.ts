// THE table of WGSL sources: one file per kernel family in kernels/, imported as text, each
// compiled with kernels/common.wgsl prepended. The families that reduce rows also get the row
// reductions (wg_sum, wg_max and the Lane entry-point input) in one of two variants: shared-memory
// trees (workgroup_reduce.wgsl) or subgroup operations (subgroup_reduce.wgsl, after
// `enable subgroups;`); f16 families get `enable f16;`; the matmul families share their params,
// bindings and load/store helpers (matmul_common.wgsl); families that touch 16-bit storage get
// its conversions (half.wgsl). Entry points are named after the kernel
// list (src/backend/kernels.ts). KILN_DEBUG >= 3 prints a module's source when it is first built.
import common from "../../../kernels/common.wgsl" with { type: "text" };
import workgroupReduce from "../../../kernels/workgroup_reduce.wgsl" with { type: "text" };
import subgroupReduce from "../../../kernels/subgroup_reduce.wgsl" with { type: "text" };
import adamw from "../../../kernels/adamw.wgsl" with { type: "text" };
import attention from "../../../kernels/attention.wgsl" with { type: "text" };
import cast from "../../../kernels/cast.wgsl" with { type: "text" };
import copy from "../../../kernels/copy.wgsl" with { type: "text" };
import cross_entropy from "../../../kernels/cross_entropy.wgsl" with { type: "text" };
import elementwise from "../../../kernels/elementwise.wgsl" with { type: "text" };
import half from "../../../kernels/half.wgsl" with { type: "text" };
import embedding from "../../../kernels/embedding.wgsl" with { type: "text" };
import layer_norm from "../../../kernels/layer_norm.wgsl" with { type: "text" };
import matmul from "../../../kernels/matmul.wgsl" with { type: "text" };
import matmulCommon from "../../../kernels/matmul_common.wgsl" with { type: "text" };
import matmul_f16 from "../../../kernels/matmul_f16.wgsl" with { type: "text" };
import matmul_half from "../../../kernels/matmul_half.wgsl" with { type: "text" };
import matmul_f16_half from "../../../kernels/matmul_f16_half.wgsl" with { type: "text" };
import reduce from "../../../kernels/reduce.wgsl" with { type: "text" };
import rms_norm from "../../../kernels/rms_norm.wgsl" with { type: "text" };
import rope from "../../../kernels/rope.wgsl" with { type: "text" };
import softmax from "../../../kernels/softmax.wgsl" with { type: "text" };
import { debugLevel } from "../../util/env.ts";

const FILES = {
  elementwise, copy, reduce, softmax, matmul, matmul_f16, matmul_half, matmul_f16_half, embedding, layer_norm, rms_norm, rope, attention,
  cross_entropy, adamw, cast,
} as const;

export type ShaderFile = keyof typeof FILES;

/** Families whose kernels call wg_sum / wg_max (and take a Lane). */
const REDUCING: ReadonlySet<ShaderFile> = new Set(["reduce", "softmax", "layer_norm", "rms_norm", "cross_entropy", "attention", "matmul"]);
/** Families written with f16 (compiled only on adapters with shader-f16). */
const F16: ReadonlySet<ShaderFile> = new Set(["matmul_f16", "matmul_f16_half"]);
/** Families that read or write 16-bit storage (the helpers of half.wgsl). */
const HALF: ReadonlySet<ShaderFile> = new Set(["cast", "matmul_half", "matmul_f16_half", "embedding"]);
/** Families of kernel "matmul" (params, bindings and helpers from matmul_common.wgsl). */
const MATMUL: ReadonlySet<ShaderFile> = new Set(["matmul", "matmul_f16"]);

/** Whether `file` has a subgroup variant: only then does the `subgroups` choice change its source. */
export function usesSubgroups(file: ShaderFile, subgroups: boolean): boolean {
  return subgroups && REDUCING.has(file);
}

const sources = new Map<string, string>();

/** The full WGSL module of `file`: enables, common.wgsl, the row reductions and shared parts it needs, the family's file. */
export function shaderSource(file: ShaderFile, subgroups = false): string {
  const sg = usesSubgroups(file, subgroups);
  const key = `${file}:${sg}`;
  let src = sources.get(key);
  if (!src) {
    const enables = `${F16.has(file) ? "enable f16;\n" : ""}${sg ? "enable subgroups;\n" : ""}`;
    const reductions = REDUCING.has(file) ? `${sg ? subgroupReduce : workgroupReduce}\n` : "";
    const shared = `${HALF.has(file) ? `${half}\n` : ""}${MATMUL.has(file) ? `${matmulCommon}\n` : ""}`;
    src = `${enables}${common}\n${reductions}${shared}${FILES[file]}`;
    sources.set(key, src);
    if (debugLevel() >= 3) console.error(`// kernels/${file}.wgsl${sg ? " (subgroups)" : ""}\n${src}`);
  }
  return src;
}
