// Conformance of matmul on every backend: all four transpose combinations, bias on and off, batched
// with per-batch strides and with a broadcast (stride 0) operand, odd M/N/K (edge tiles), and the
// GPT shapes of a training step. Oracle: tests/reference.ts matmul (float64, i-j-k). The wasm
// backend runs twice: on the native BLAS when this machine has one, and with KILN_BLAS=off. Then the
// WASM specifics, for the wasm kernel and each native BLAS found (OpenBLAS, BLIS): odd sizes in every
// combination, calls split over worker threads, K = 0, and process exit.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { KernelParams } from "../../src/backend/kernels.ts";
import { findBlas, loadBlas, type BlasLibrary } from "../../src/backend/wasm/blas.ts";
import { BLAS_MATMUL } from "../../src/backend/wasm/blas_matmul.ts";
import { BLAS_MIN_ROWS, matmulEngine, runMatmul } from "../../src/backend/wasm/matmul.ts";
import { createWasmRuntime, type WasmRuntime } from "../../src/backend/wasm/module.ts";
import { threadPool } from "../../src/backend/wasm/threads.ts";
import { WASM_NO_BLAS, backendNames, getBackend } from "../backends.ts";
import { expectKernel, reference, seedOf, uniform } from "./harness.ts";

// [batch, M, N, K]
const SHAPES: [number, number, number, number][] = [
  [1, 1, 1, 1], [1, 3, 7, 5], [1, 7, 33, 65], [2, 33, 17, 9], [1, 65, 127, 33], [3, 13, 1, 31], [1, 1, 65, 127],
  [1, 127, 64, 128], [1, 768, 128, 64], [2, 64, 64, 32],
];

describe.each([...backendNames, WASM_NO_BLAS])("matmul on %s", (name) => {
  for (const [transA, transB] of [[0, 0], [0, 1], [1, 0], [1, 1]]) {
    test(`matmul transA=${transA} transB=${transB} with and without bias matches reference`, async () => {
      const backend = await getBackend(name);
      for (const [batch, M, N, K] of SHAPES) {
        for (const hasBias of [0, 1]) {
          const s = (t: string) => seedOf("matmul", transA, transB, batch, M, N, K, hasBias, t);
          const a = uniform(batch * M * K, s("a")), b = uniform(batch * K * N, s("b"));
          const bias = hasBias ? uniform(N, s("bias")) : null;
          const p = { batch, M, N, K, transA, transB, strideA: M * K, strideB: K * N, hasBias };
          await expectKernel(backend, "matmul", [a, b, bias], [batch * M * N], p, { atol: 2e-6 * Math.sqrt(K), rtol: 1e-5 });
        }
      }
    });
  }

  test("matmul broadcasts an operand over the batch with stride 0", async () => {
    const backend = await getBackend(name);
    for (const [batch, M, N, K] of [[3, 5, 7, 9], [4, 33, 65, 17]] as const) {
      for (const [transA, transB] of [[0, 0], [1, 1]]) {
        const s = (t: string) => seedOf("matmul-bcast", batch, M, N, K, transA, transB, t);
        const a = uniform(batch * M * K, s("a")), w = uniform(K * N, s("w")), bias = uniform(N, s("bias"));
        const p1 = { batch, M, N, K, transA, transB, strideA: M * K, strideB: 0, hasBias: 1 };
        await expectKernel(backend, "matmul", [a, w, bias], [batch * M * N], p1, { atol: 2e-6 * Math.sqrt(K), rtol: 1e-5 });
        const x = uniform(M * K, s("x")), bs = uniform(batch * K * N, s("bs"));
        const p2 = { batch, M, N, K, transA, transB, strideA: 0, strideB: K * N, hasBias: 0 };
        await expectKernel(backend, "matmul", [x, bs, null], [batch * M * N], p2, { atol: 2e-6 * Math.sqrt(K), rtol: 1e-5 });
      }
    }
  });
});

// ---- WASM specifics: the kernel split over worker threads (src/backend/wasm/matmul.ts, threads.ts) ----

const ODD = [1, 3, 7, 17, 65, 127];

/** Runs matmul through runMatmul on `rt` and returns the output. */
function wasmMatmul(rt: WasmRuntime, a: Float32Array, b: Float32Array, bias: Float32Array | null, p: KernelParams<"matmul">): Float32Array {
  const put = (x: Float32Array) => {
    const ptr = rt.alloc(x.byteLength);
    rt.f32(ptr, x.length).set(x);
    return ptr;
  };
  const n = p.batch * p.M * p.N;
  const pa = put(a), pb = put(b), pbias = bias ? put(bias) : 0, po = rt.alloc(n * 4);
  rt.f32(po, n).fill(NaN);
  runMatmul(rt, pa, pb, pbias, po, p);
  const out = rt.f32(po, n).slice();
  for (const ptr of [pa, pb, pbias, po]) if (ptr) rt.free(ptr);
  return out;
}

function expectMatmul(rt: WasmRuntime, p: KernelParams<"matmul">, tag: string): void {
  const { batch, M, N, K } = p;
  const s = (t: string) => seedOf(tag, batch, M, N, K, p.transA, p.transB, p.strideA, p.strideB, p.hasBias, t);
  const a = uniform(p.strideA ? batch * M * K : M * K, s("a"));
  const b = uniform(p.strideB ? batch * K * N : K * N, s("b"));
  const bias = p.hasBias ? uniform(N, s("bias")) : null;
  const got = wasmMatmul(rt, a, b, bias, p);
  const [want] = reference("matmul", [a, b, bias], [batch * M * N], p);
  expect(got).toBeAllClose(want, { atol: 1e-6 * Math.sqrt(K + 1), rtol: 1e-5 });
}

/** The matmul engines of the wasm backend on this machine: its kernel, and the native BLAS libraries that load. */
async function engines(): Promise<[string, BlasLibrary | null][]> {
  const out: [string, BlasLibrary | null][] = [["wasm kernel", null]];
  const found = await findBlas({ kind: "auto" });
  if (found) out.push([found.name, found]);
  const blis = await loadBlas("libblis.so.4").catch(() => null);
  if (blis && blis.name !== found?.name) out.push([blis.name, blis]);
  return out;
}

describe.each(await engines())("matmul_f32 on %s with worker threads", (_engine, blas) => {
  let rt: WasmRuntime;
  beforeAll(async () => {
    rt = await createWasmRuntime({ threads: 2, blas });
    threadPool(rt).startWorkers();
    await threadPool(rt).whenReady();
  });
  afterAll(() => rt.dispose());

  test("odd shapes (1, 3, 7, 17, 65, 127) in every transpose combination match reference", () => {
    for (const M of ODD) for (const N of ODD) for (const K of ODD) {
      for (const [transA, transB] of [[0, 0], [0, 1], [1, 0], [1, 1]]) {
        const hasBias = (M + N + K) % 2;
        expectMatmul(rt, { batch: 1, M, N, K, transA, transB, strideA: M * K, strideB: K * N, hasBias }, "odd");
      }
    }
  });

  test("calls big enough to be split over threads match reference (rows and columns split, batch, broadcast)", () => {
    const pool = threadPool(rt);
    expect(pool.participants).toBe(2);
    const before = pool.workerChunks;
    const shapes: [number, number, number, number][] = [
      [1, 768, 65, 128], [1, 128, 384, 768], [1, 65, 127, 769], [1, 301, 257, 99], [3, 97, 131, 130], [1, 7, 1031, 600],
      [1, 1, 8191, 600], [2, 2, 3001, 701], // one or two rows: the vector·matrix path, split by columns
    ];
    for (const [batch, M, N, K] of shapes) {
      for (const [transA, transB] of [[0, 0], [0, 1], [1, 0], [1, 1]]) {
        for (const [strideA, strideB] of [[M * K, K * N], [M * K, 0], [0, K * N]]) {
          if (batch === 1 && (strideA === 0 || strideB === 0)) continue;
          expectMatmul(rt, { batch, M, N, K, transA, transB, strideA, strideB, hasBias: transA ^ transB }, "threads");
        }
      }
    }
    expect(pool.workerChunks).toBeGreaterThan(before); // the worker took part
  });

  const wat = new URL("../../wasm/build/kernels.wat", import.meta.url);
  // only `node wasm/build.mjs` (npm install) writes the text form
  test.skipIf(!existsSync(wat))(`the 6×8 micro-kernel is its own function in the build (not inlined into the driver)${existsSync(wat) ? "" : " (no kernels.wat: skipped)"}`, () => {
    expect(readFileSync(wat, "utf8")).toContain("(func $wasm/assembly/matmul_micro/micro_6x8 ");
  });

  test("products on memory that grew after the first call (the BLAS path re-reads the base address)", () => {
    expectMatmul(rt, { batch: 1, M: 33, N: 17, K: 9, transA: 0, transB: 0, strideA: 0, strideB: 0, hasBias: 1 }, "grow");
    const pages = rt.memory.buffer.byteLength / 65536;
    const big = rt.alloc(64 << 20); // past the current end: the memory grows
    expect(rt.memory.buffer.byteLength / 65536).toBeGreaterThan(pages);
    expectMatmul(rt, { batch: 2, M: 129, N: 65, K: 300, transA: 1, transB: 0, strideA: 129 * 300, strideB: 300 * 65, hasBias: 1 }, "grow");
    rt.free(big);
  });

  test("decoding rows (M ≤ 3) stay on the wasm kernel's vector·matrix path; bigger products go to the BLAS", () => {
    expect(matmulEngine(rt, { M: BLAS_MIN_ROWS - 1 }).fn).toBe("matmul_f32");
    expect(matmulEngine(rt, { M: BLAS_MIN_ROWS }).fn).toBe(blas ? BLAS_MATMUL : "matmul_f32");
  });

  test("the lm-head product (768×128·128×65) is split over both threads, a small one (32×64·64×65) is not", () => {
    const pool = threadPool(rt);
    const gemm = { batch: 1, transA: 0, transB: 1, strideA: 0, strideB: 0, hasBias: 0 };
    const before = pool.sharedChunks;
    expectMatmul(rt, { ...gemm, M: 768, N: 65, K: 128 }, "lm-head");
    expect(pool.sharedChunks).toBeGreaterThanOrEqual(before + 2);
    const after = pool.sharedChunks;
    expectMatmul(rt, { ...gemm, M: 32, N: 65, K: 64 }, "small");
    expect(pool.sharedChunks).toBe(after);
  });

  test("K = 0 writes the bias (or zeros)", () => {
    expectMatmul(rt, { batch: 2, M: 5, N: 9, K: 0, transA: 0, transB: 0, strideA: 0, strideB: 0, hasBias: 1 }, "k0");
    expectMatmul(rt, { batch: 1, M: 5, N: 9, K: 0, transA: 1, transB: 1, strideA: 0, strideB: 0, hasBias: 0 }, "k0");
  });

  test("a process with a worker pool exits on its own, disposed or not", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kiln-matmul-"));
    try {
      for (const dispose of [true, false]) {
        const script = join(dir, `exit_${dispose}.ts`);
        const src = (f: string) => JSON.stringify(fileURLToPath(new URL(`../../src/backend/wasm/${f}`, import.meta.url)));
        writeFileSync(script, [
          `import { createWasmRuntime } from ${src("module.ts")};`,
          `import { runMatmul } from ${src("matmul.ts")};`,
          `import { threadPool } from ${src("threads.ts")};`,
          `import { loadBlas } from ${src("blas.ts")};`,
          `const rt = await createWasmRuntime({ threads: 2, blas: ${blas ? `await loadBlas(${JSON.stringify(blas.path)})` : "null"} });`,
          `const n = 512, a = rt.alloc(n * n * 4), o = rt.alloc(n * n * 4);`,
          `rt.f32(a, n * n).fill(1);`,
          `const p = { batch: 1, M: n, N: n, K: n, transA: 0, transB: 0, strideA: 0, strideB: 0, hasBias: 0 };`,
          `runMatmul(rt, a, a, 0, o, p);`,
          `await threadPool(rt).whenReady();`,
          `runMatmul(rt, a, a, 0, o, p);`,
          `if (rt.f32(o, 1)[0] !== n) throw new Error("wrong result");`,
          dispose ? `rt.dispose();` : ``,
          `console.log("done");`,
        ].join("\n"));
        const proc = Bun.spawn([process.execPath, script], { stdout: "pipe", stderr: "pipe" });
        const timer = setTimeout(() => proc.kill(), 30000);
        const code = await proc.exited;
        clearTimeout(timer);
        expect({ dispose, code, out: (await new Response(proc.stdout).text()).trim() }).toEqual({ dispose, code: 0, out: "done" });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
