// The WebGPU kernel table: every kernel of the kernel list, from the ops/<family>.ts files.
// `satisfies KernelTable` makes a kernel missing here a type error.
import type { KernelTable } from "../launch.ts";
import { ADAMW } from "./adamw.ts";
import { ATTENTION } from "./attention.ts";
import { CAST } from "./cast.ts";
import { COPY } from "./copy.ts";
import { CROSS_ENTROPY } from "./cross_entropy.ts";
import { ELEMENTWISE } from "./elementwise.ts";
import { EMBEDDING } from "./embedding.ts";
import { LAYER_NORM } from "./layer_norm.ts";
import { MATMUL } from "./matmul.ts";
import { REDUCE } from "./reduce.ts";
import { RMS_NORM } from "./rms_norm.ts";
import { ROPE } from "./rope.ts";
import { SOFTMAX } from "./softmax.ts";

export const KERNEL_TABLE = {
  ...ELEMENTWISE, ...COPY, ...REDUCE, ...SOFTMAX, ...MATMUL, ...EMBEDDING, ...LAYER_NORM, ...RMS_NORM,
  ...ROPE, ...ATTENTION, ...CROSS_ENTROPY, ...ADAMW, ...CAST,
} satisfies KernelTable;
