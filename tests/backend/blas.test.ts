// The wasm backend's native BLAS (src/backend/wasm/blas.ts, blas_matmul.ts): what KILN_BLAS means,
// what is searched for, the error for a library that cannot be used (exit code 2 in the CLI), and
// that a training run gives the same losses on the BLAS and without it. The matmul kernel itself is
// checked on both paths by matmul.test.ts. KILN_TEST_BLAS=1 (CI, which installs libopenblas0)
// makes a missing BLAS a failure instead of a skip.

import { describe, expect, test } from "bun:test";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { createComputeBackend } from "../../src/backend/registry.ts";
import { blasCandidates, findBlas, parseBlasSetting } from "../../src/backend/wasm/blas.ts";
import { TokenDataset } from "../../src/data/dataset.ts";
import { CharTokenizer } from "../../src/data/tokenizer.ts";
import { GPT } from "../../src/models/gpt.ts";
import { seed } from "../../src/tensor/random.ts";
import { useBackend } from "../../src/tensor/tensor.ts";
import { Trainer } from "../../src/train/trainer.ts";

const ROOT = join(import.meta.dir, "..", "..");
const found = await findBlas({ kind: "auto" });
const required = process.env.KILN_TEST_BLAS === "1";

/** Runs a script with `bun -e` under the given KILN_BLAS; returns its exit code, stdout and stderr. */
async function runWith(blas: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const proc = Bun.spawn([process.execPath, ...args], { cwd: ROOT, env: { ...process.env, KILN_BLAS: blas, KILN_DEBUG: "0" }, stdout: "pipe", stderr: "pipe" });
  const code = await proc.exited;
  return { code, out: (await new Response(proc.stdout).text()).trim(), err: (await new Response(proc.stderr).text()).trim() };
}

const DEVICE_SCRIPT = `
import { createComputeBackend } from "./src/backend/registry.ts";
const b = await createComputeBackend("wasm");
const x = b.alloc(4 * 4 * 4), out = b.alloc(4 * 4 * 4);
b.upload(x, Float32Array.from({ length: 16 }, (_, i) => i));
b.run("matmul", [x, x, null], [out], { batch: 1, M: 4, N: 4, K: 4, transA: 1, transB: 0, strideA: 0, strideB: 0, hasBias: 0 });
console.log(b.device + " | " + new Float32Array(b.downloadSync(out))[5]);
`;

describe("KILN_BLAS", () => {
  test("settings: auto (default), off, or a library", () => {
    expect(parseBlasSetting(undefined)).toEqual({ kind: "auto" });
    expect(parseBlasSetting("")).toEqual({ kind: "auto" });
    expect(parseBlasSetting("auto")).toEqual({ kind: "auto" });
    expect(parseBlasSetting("off")).toEqual({ kind: "off" });
    expect(parseBlasSetting("0")).toEqual({ kind: "off" });
    expect(parseBlasSetting(" /opt/lib/libopenblas.so ")).toEqual({ kind: "path", path: "/opt/lib/libopenblas.so" });
  });

  test("the search order per platform: OpenBLAS, BLIS, MKL, then a system CBLAS; Accelerate first on macOS", () => {
    const linux = blasCandidates("linux");
    expect(linux[0]).toBe("libopenblas.so.0");
    expect(linux.indexOf("libblis.so.4")).toBeGreaterThan(0);
    expect(linux.indexOf("libmkl_rt.so.2")).toBeGreaterThan(linux.indexOf("libblis.so.4"));
    expect(linux.indexOf("libblas.so.3")).toBeGreaterThan(linux.indexOf("libmkl_rt.so.2"));
    expect(blasCandidates("darwin")[0]).toBe("/System/Library/Frameworks/Accelerate.framework/Accelerate");
    expect(blasCandidates("win32")).toContain("libopenblas.dll");
  });

  test.skipIf(!found && !required)("a native BLAS is found here, and backend.device names it", async () => {
    expect(found?.name ?? "none").toMatch(/^(OpenBLAS|BLIS|MKL|Accelerate)|\.so|\.dll|\.dylib/);
    const backend = await createComputeBackend("wasm", { blas: "auto" });
    expect(backend.device).toContain(`+ ${found!.name}`);
    backend.dispose();
  });

  test("KILN_BLAS=off runs the wasm kernel (and the same product)", async () => {
    // x = 0..15 as 4×4; (xᵀ·x)[1][1] = 1² + 5² + 9² + 13² = 276
    const off = await runWith("off", ["-e", DEVICE_SCRIPT]);
    expect(off.code).toBe(0);
    expect(off.err).toBe("");
    expect(off.out).toMatch(/^wasm simd128 \(\d+ threads?\) \| 276$/);
    if (found) {
      const on = await runWith(found.path, ["-e", DEVICE_SCRIPT]);
      expect(on.code).toBe(0);
      expect(on.out).toContain(`+ ${found.name}`);
      expect(on.out).toEndWith("| 276");
    }
  }, 60_000);

  test("a library that cannot be used is one clear line and exit code 2 in the CLI", async () => {
    for (const bad of ["/nonexistent/libopenblas.so.0", "libm.so.6"]) { // missing; present but no cblas_sgemm
      await expect(createComputeBackend("wasm", { blas: bad })).rejects.toThrow(`KILN_BLAS=${bad}: cannot load a CBLAS library`);
      const cli = await runWith(bad, ["src/cli/main.ts", "train", "--backend", "wasm", "--iters", "1", "--out", "/nonexistent/run"]);
      expect(cli.code).toBe(2);
      expect(cli.err.split("\n")).toEqual([expect.stringContaining(`kiln train: KILN_BLAS=${bad}: cannot load`)]);
    }
  }, 60_000);
});

describe.skipIf(!found && !required)("training on the native BLAS", () => {
  test("50 baby-GPT steps (dropout 0.1) give the same losses within 1e-4 with and without the BLAS", async () => {
    const text = await readFile(join(ROOT, "data", "tinyshakespeare.txt"), "utf8");
    const tokenizer = CharTokenizer.fromText(text);
    const data = new TokenDataset(Int32Array.from(tokenizer.encode(text)), 64);
    const losses = async (blas: string) => {
      const backend = await createComputeBackend("wasm", { blas });
      useBackend(backend);
      seed(1337);
      const model = new GPT({ vocabSize: tokenizer.vocabSize, blockSize: 64, nLayer: 4, nHead: 4, nEmbd: 128, dropout: 0.1 });
      const trainer = new Trainer({
        model, data, progress: false, outDir: null,
        args: { iters: 50, batchSize: 12, evalInterval: 0, finalEvalIters: 1, seed: 1337 },
      });
      const result = await trainer.fit();
      trainer.optimizer.dispose();
      model.dispose();
      const device = backend.device;
      backend.dispose();
      return { device, losses: result.lossHistory };
    };
    const withBlas = await losses("auto");
    const without = await losses("off");
    expect(withBlas.device).toContain("+");
    expect(without.device).not.toContain("+");
    expect(without.losses.length).toBe(50);
    expect(withBlas.losses).toBeAllClose(without.losses, { atol: 1e-4, rtol: 0 });
    expect(without.losses[49]).toBeLessThan(without.losses[0] - 0.5);
  }, 300_000);
});
