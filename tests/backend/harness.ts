// Shared helpers of the kernel conformance suite (tests/backend/*.test.ts): seeded random inputs,
// one kernel launch on a backend (alloc, upload, run, download, free), and a check of every output
// against the float64 oracle in tests/reference.ts. Not a test file itself.
import { expect } from "bun:test";
import type { Backend, DeviceBuffer } from "../../src/backend/backend.ts";
import type { KernelName, KernelParams } from "../../src/backend/kernels.ts";
import { REFERENCE } from "../reference.ts";
import type { CloseOptions } from "../setup.ts";

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n floats uniform in [lo, hi) from a seeded stream. */
export function uniform(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

/** n ints uniform in [lo, hi). */
export function ints(n: number, seed: number, lo: number, hi: number): Int32Array {
  const r = rng(seed);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + Math.floor((hi - lo) * r());
  return out;
}

/** A seed that differs per test case (name and shape). */
export function seedOf(...parts: (string | number)[]): number {
  let h = 2166136261;
  for (const ch of parts.join("|")) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  return h >>> 0;
}

type HostArray = Float32Array | Int32Array;

/**
 * Runs one kernel on `backend`. `outputs` gives each output's element count, or its starting
 * contents for "+=" / in-place outputs. Returns the outputs' contents after the launch.
 */
export async function runKernel<K extends KernelName>(
  backend: Backend,
  kernel: K,
  inputs: (HostArray | null)[],
  outputs: (number | Float32Array)[],
  params: KernelParams<K>,
): Promise<Float32Array[]> {
  const held: DeviceBuffer[] = [];
  const upload = (data: HostArray) => {
    const buf = backend.alloc(data.byteLength);
    held.push(buf);
    backend.upload(buf, data);
    return buf;
  };
  try {
    const ins = inputs.map((x) => (x === null ? null : upload(x)));
    const outs = outputs.map((o) => {
      if (typeof o !== "number") return upload(o);
      const buf = backend.alloc(o * 4);
      held.push(buf);
      backend.upload(buf, new Float32Array(o).fill(NaN)); // a kernel must write every element
      return buf;
    });
    backend.run(kernel, ins, outs, params);
    return await Promise.all(
      outs.map(async (b, i) => {
        const n = typeof outputs[i] === "number" ? (outputs[i] as number) : (outputs[i] as Float32Array).length;
        return new Float32Array(await backend.download(b, n * 4));
      }),
    );
  } finally {
    for (const b of held) backend.free(b);
  }
}

/** The oracle's outputs for the same inputs. */
export function reference<K extends KernelName>(
  kernel: K,
  inputs: (HostArray | null)[],
  outputs: (number | Float32Array)[],
  params: KernelParams<K>,
): Float64Array[] {
  const f64 = (x: HostArray | null) => (x === null ? null : Float64Array.from(x));
  const init = outputs.map((o) => (typeof o === "number" ? new Float64Array(o) : Float64Array.from(o)));
  return REFERENCE[kernel](inputs.map(f64), params, init);
}

/**
 * Runs `kernel` on the backend and on the oracle and expects every output to be close.
 * `tol` is one tolerance for all outputs or one per output.
 */
export async function expectKernel<K extends KernelName>(
  backend: Backend,
  kernel: K,
  inputs: (HostArray | null)[],
  outputs: (number | Float32Array)[],
  params: KernelParams<K>,
  tol: CloseOptions | CloseOptions[] = { atol: 1e-5, rtol: 1e-5 },
): Promise<Float32Array[]> {
  const got = await runKernel(backend, kernel, inputs, outputs, params);
  const want = reference(kernel, inputs, outputs, params);
  expect(got.length).toBe(want.length);
  for (let i = 0; i < got.length; i++) {
    const t = Array.isArray(tol) ? tol[i] : tol;
    expect(got[i]).toBeAllClose(want[i], t);
  }
  return got;
}
