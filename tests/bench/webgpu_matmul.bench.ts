// WebGPU matmul lab: GFLOP/s of each matmul variant at square and GPT-like shapes, and of the M = 1
// (decode) GEMV kernels against the 4×4 kernel, validated against a float64 reference on a sample
// of outputs first. Not a test: `bun tests/bench/webgpu_matmul.bench.ts [reps] [filter]`.
// Variants: matmul (scalar loads: the kernel before 16-byte loads; forced here by an unaligned
// strideB, which batch 1 never reads; a _tB shape on a CPU adapter still has B transposed into
// matmul_vec4 first), matmul_vec4, matmul_tiled, matmul_f16_tiled (where the
// adapter has shader-f16), gemv. Reports the median over reps of wall GFLOP/s and GFLOP per
// process-CPU-second (steadier on a shared CPU, e.g. lavapipe).
import type { KernelParams } from "../../src/backend/kernels.ts";
import { createWebGPUBackend, type Tuning, type WebGPUBackend } from "../../src/backend/webgpu/index.ts";

const reps = Number(process.argv[2] ?? 5);
const filter = process.argv[3] ?? "";
const backend = (await createWebGPUBackend({})) as WebGPUBackend | null;
if (!backend) {
  console.log("no WebGPU adapter");
  process.exit(0);
}
console.log(`device: ${backend.device}`);

const SHAPES = [
  { name: "512", M: 512, N: 512, K: 512 },
  { name: "768x128x384", M: 768, N: 384, K: 128 },
  { name: "768x128x512", M: 768, N: 512, K: 128 },
  { name: "768x512x128", M: 768, N: 128, K: 512 },
  { name: "768x128x65", M: 768, N: 65, K: 128 },
  { name: "768x384x128_tB", M: 768, N: 128, K: 384, transB: 1 },
  { name: "128x768x384_tA", M: 128, N: 384, K: 768, transA: 1 },
  { name: "1x768x3072", M: 1, N: 3072, K: 768 },
  { name: "1x768x3072_tB", M: 1, N: 3072, K: 768, transB: 1 },
  { name: "1x768x32000_tB", M: 1, N: 32000, K: 768, transB: 1 }, // an lm head
];

interface Variant { name: string; tuning: Partial<Tuning>; scalar?: boolean; gemv?: boolean }
const base = backend.tuning;
const VARIANTS: Variant[] = [
  { name: "matmul", tuning: { matmul: "matmul", gemv: 0, f16: false }, scalar: true },
  { name: "matmul_vec4", tuning: { matmul: "matmul", gemv: 0, f16: false } },
  { name: "matmul_tiled", tuning: { matmul: "matmul_tiled", gemv: 0, f16: false } },
  ...(backend.driver.features.shaderF16 ? [{ name: "matmul_f16_tiled", tuning: { gemv: 0, f16: true } }] : []),
  { name: "gemv", tuning: { gemv: base.gemv || 1, f16: false }, gemv: true },
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

for (const s of SHAPES) {
  if (!s.name.includes(filter)) continue;
  const { M, N, K } = s;
  const transA = s.transA ?? 0, transB = s.transB ?? 0;
  const a = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i * 0.37));
  const b = Float32Array.from({ length: K * N }, (_, i) => Math.cos(i * 0.11));
  const ab = backend.alloc(a.byteLength), bb = backend.alloc(b.byteLength), out = backend.alloc(M * N * 4);
  backend.upload(ab, a);
  backend.upload(bb, b);
  const line: string[] = [];
  for (const v of VARIANTS) {
    if (M === 1 ? !(v.gemv || v.name === "matmul") : v.gemv) continue; // M = 1: gemv against the 4×4 kernel
    backend.tuning = { ...base, ...v.tuning };
    const params: KernelParams<"matmul"> = { batch: 1, M, N, K, transA, transB, strideA: 0, strideB: v.scalar ? 1 : 0, hasBias: 0 };
    backend.run("matmul", [ab, bb, null], [out], params); // compile + JIT
    const c = new Float32Array(await backend.download(out));
    let maxErr = 0, maxRef = 0;
    for (let t = 0; t < 64; t++) {
      const m = (t * 97) % M, n = (t * 61) % N;
      let ref = 0;
      for (let k = 0; k < K; k++) ref += a[transA ? k * M + m : m * K + k] * b[transB ? n * K + k : k * N + n];
      maxErr = Math.max(maxErr, Math.abs(c[m * N + n] - ref));
      maxRef = Math.max(maxRef, Math.abs(ref));
    }
    const flop = 2 * M * N * K;
    const t0 = performance.now();
    backend.run("matmul", [ab, bb, null], [out], params);
    await backend.flush();
    const inner = Math.max(1, Math.ceil(40 / Math.max(performance.now() - t0, 0.05)));
    const wall: number[] = [], cpu: number[] = [];
    for (let r = 0; r < reps; r++) {
      const c0 = process.cpuUsage(), w0 = performance.now();
      for (let i = 0; i < inner; i++) backend.run("matmul", [ab, bb, null], [out], params);
      await backend.flush();
      wall.push((flop * inner) / ((performance.now() - w0) * 1e6));
      const d = process.cpuUsage(c0);
      cpu.push((flop * inner) / ((d.user + d.system) * 1e3));
    }
    line.push(`${v.name} ${median(wall).toFixed(2)}/${median(cpu).toFixed(2)} (err ${(maxErr / maxRef).toExponential(0)})`);
  }
  console.log(`${s.name.padEnd(15)} GFLOP/s wall/CPU-s  ${line.join("  ")}`);
  for (const x of [ab, bb, out]) backend.free(x);
}
backend.tuning = base;
backend.dispose();
