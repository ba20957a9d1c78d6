// What a backend op file (ops/*.ts) gets to work with: launch an entry point of a kernels/*.wgsl
// file over a grid with its Params, copy, borrow a temporary buffer; plus the per-adapter tuning.
// Also the Params packer (one uniform struct per kernel: u32 / i32 / f32 fields in order).
import type { KernelName, KernelParams } from "../kernels.ts";
import type { GpuBuffer, GpuFeatures, GpuLimits } from "./driver.ts";
import type { ShaderFile } from "./shaders.ts";

/** Kernel variants chosen per adapter (device.ts chooseTuning); recorded in backend.device. */
export interface Tuning {
  /** "matmul": register blocking, no shared memory (fastest on lavapipe): matmul_vec4 (A read
   *  workgroup-uniform, B in 16-byte loads) where B allows it, else 4×4 outputs per thread;
   *  "matmul_tiled": 64×64 shared-memory tiles (fastest on real GPUs) */
  matmul: "matmul" | "matmul_tiled";
  /** M = 1 products (one token at a time: decode) on the GEMV kernels matmul_vec / matmul_vec_rows:
   *  the slices of K per matmul_vec workgroup (1 on CPU adapters, 4 on GPUs); 0 = off */
  gemv: number;
  /** row reductions (softmax, layer_norm, rms_norm, cross_entropy, sum, sum_squares, matmul_vec)
   *  with subgroup operations; only where the device has the `subgroups` feature */
  subgroups: boolean;
  /** threads per row of the row kernels (a power of two, 8..256) */
  rowThreads: number;
  /** attention with at most this many query rows (B·H·T; decoding) runs attention_row: a
   *  workgroup per row with the keys split between its threads (more parallel work) */
  attentionRows: number;
  /** matmul reads f32 and multiplies in f16 (inference only: about 3 significant digits); an
   *  opt-in, never chosen by default, and only where the device has `shader-f16` */
  f16: boolean;
}

export interface KernelContext {
  readonly tuning: Tuning;
  readonly limits: GpuLimits;
  /** the optional features the device has (a tuning flag takes effect only where its feature is here) */
  readonly features: GpuFeatures;
  /** Queues `entry` of kernels/`file`.wgsl with `buffers` bound at 0.. and `params` after them. */
  launch(file: ShaderFile, entry: string, buffers: readonly GpuBuffer[], params: Uint8Array, grid: readonly number[], constants?: Record<string, number>): void;
  copy(src: GpuBuffer, dst: GpuBuffer, bytes: number): void;
  /** A scratch buffer for this launch only (returned to the pool after it is queued). */
  temp(bytes: number): GpuBuffer;
  /** A read-only table made once per `key` from `make()` (kept until dispose). */
  constant(key: string, make: () => Float32Array): GpuBuffer;
  /** A small buffer bound in place of an absent optional input. */
  readonly dummy: GpuBuffer;
}

/** A kernel's WebGPU implementation: buffers in kernel-list order (null for an absent optional input). */
export type KernelFn<K extends KernelName> = (
  ctx: KernelContext,
  inputs: readonly (GpuBuffer | null)[],
  outputs: readonly GpuBuffer[],
  params: KernelParams<K>,
) => void;

export type KernelTable<K extends KernelName = KernelName> = { [P in K]: KernelFn<P> };

type Field = ["u" | "i" | "f", number];

/** Packs Params fields (u32, i32 or f32, 4 bytes each, in struct order). */
export function pack(...fields: Field[]): Uint8Array {
  const bytes = new Uint8Array(fields.length * 4);
  const view = new DataView(bytes.buffer);
  fields.forEach(([type, v], i) => {
    if (type === "f") view.setFloat32(4 * i, v, true);
    else if (type === "i") view.setInt32(4 * i, v, true);
    else view.setUint32(4 * i, v >>> 0, true);
  });
  return bytes;
}

export const u = (v: number): Field => ["u", v];
export const i = (v: number): Field => ["i", v];
export const f = (v: number): Field => ["f", v];

/** The override constants of a row kernel: its threads per row (RW) from the tuning. */
export function rowConstants(ctx: KernelContext): Record<string, number> {
  return { RW: ctx.tuning.rowThreads };
}

/** Workgroups for `threads` threads in groups of `size`, folded into 2-D past 65535 per dimension. */
export function grid1d(threads: number, size: number, maxPerDim = 65535): [number, number, number] {
  const groups = Math.max(1, Math.ceil(threads / size));
  if (groups <= maxPerDim) return [groups, 1, 1];
  const y = Math.ceil(groups / maxPerDim);
  return [Math.ceil(groups / y), y, 1];
}
