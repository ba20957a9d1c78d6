// Conformance of copy (strided gather) and copy_backward (scatter-add, "+=") on every backend:
// transposes, permutes, expands (stride 0), slices with an offset, reversed (negative) strides.
import { describe, test } from "bun:test";
import type { KernelParams } from "../../src/backend/kernels.ts";
import { backendNames, getBackend } from "../backends.ts";
import { expectKernel, seedOf, uniform } from "./harness.ts";

/** copy params for a view of dims d (≤ 6) with strides s into a base tensor. */
function view(d: number[], s: number[], offset = 0, unitDimsFirst = false): KernelParams<"copy"> {
  const pad = 6 - d.length;
  const dd = unitDimsFirst ? [...Array(pad).fill(1), ...d] : [...d, ...Array(pad).fill(1)];
  const ss = unitDimsFirst ? [...Array(pad).fill(0), ...s] : [...s, ...Array(pad).fill(0)];
  const n = d.reduce((a, b) => a * b, 1);
  return {
    n, rank: d.length, offset,
    d0: dd[0], d1: dd[1], d2: dd[2], d3: dd[3], d4: dd[4], d5: dd[5],
    s0: ss[0], s1: ss[1], s2: ss[2], s3: ss[3], s4: ss[4], s5: ss[5],
  };
}

const sizeOf = (d: number[]) => d.reduce((a, b) => a * b, 1);

// [case name, base size, dims, strides, offset, injective]
const CASES: [string, number, number[], number[], number, boolean][] = [
  ["contiguous 1-d", 7, [7], [1], 0, true],
  ["transpose [3,5]", 15, [5, 3], [1, 5], 0, true],
  ["permute [2,3,4,5] -> (0,2,1,3)", 120, [2, 4, 3, 5], [60, 5, 20, 1], 0, true],
  ["permute [2,3,4] -> (2,0,1)", 24, [4, 2, 3], [1, 12, 4], 0, true],
  ["expand [1,7] -> [5,7]", 7, [5, 7], [0, 1], 0, false],
  ["expand [3,1] -> [3,33]", 3, [3, 33], [1, 0], 0, false],
  ["slice rows 2..5 of [9,7]", 63, [3, 7], [7, 1], 14, true],
  ["slice column 3 of [9,7]", 63, [9], [7], 3, true],
  ["every other element", 65, [33], [2], 0, true],
  ["flip [5,7] along dim 1", 35, [5, 7], [7, -1], 6, true],
  ["rank 6", 2 * 3 * 2 * 3 * 2 * 3, [3, 2, 3, 2, 3, 2], [1, 3, 6, 18, 36, 108], 0, true],
  ["attention heads [B,T,H,D] -> [B,H,T,D]", 2 * 5 * 3 * 8, [2, 3, 5, 8], [120, 8, 24, 1], 0, true],
  ["transpose [40,33] (tiles with tails)", 40 * 33, [33, 40], [1, 33], 0, true],
];

describe.each(backendNames)("copy on %s", (name) => {
  for (const [label, size, d, s, offset] of CASES) {
    test(`copy ${label} matches reference (unit dims last and first)`, async () => {
      const backend = await getBackend(name);
      const x = uniform(size, seedOf("copy", label));
      for (const first of [false, true]) {
        const p = view(d, s, offset, first);
        await expectKernel(backend, "copy", [x], [p.n], p, { atol: 0, rtol: 0 });
      }
    });
  }
  for (const [label, size, d, s, offset, injective] of CASES) {
    if (!injective) continue;
    test(`copy_backward ${label} adds into dx`, async () => {
      const backend = await getBackend(name);
      const dout = uniform(sizeOf(d), seedOf("copy_backward", label, "dout"));
      const dx0 = uniform(size, seedOf("copy_backward", label, "dx"));
      for (const first of [false, true]) {
        const p = view(d, s, offset, first);
        await expectKernel<"copy_backward">(backend, "copy_backward", [dout], [dx0], p, { atol: 1e-6, rtol: 1e-6 });
      }
    });
  }
});
