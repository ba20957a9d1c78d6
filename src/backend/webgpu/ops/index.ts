// The WebGPU kernel table: every kernel of the kernel list, from the ops/<family>.ts files.
// `satisfies KernelTable` makes a kernel missing here a type error.
import type { KernelTable } from "../launch.ts";
import { ELEMENTWISE } from "./elementwise.ts";
import { MATMUL } from "./matmul.ts";

export const KERNEL_TABLE = {
  ...ELEMENTWISE,
  ...MATMUL,
} as KernelTable;
