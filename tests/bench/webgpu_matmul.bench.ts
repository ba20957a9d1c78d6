// WebGPU matmul lab: GFLOP/s of both variants (register-blocked "matmul", shared-memory
// "matmul_tiled") at M = N = K = 512 (or argv sizes), validated against a float64 reference on a
// sample of outputs first. Not a test: `bun tests/bench/webgpu_matmul.bench.ts [size] [reps]`.
// Reports wall GFLOP/s and GFLOP per process-CPU-second (steadier on a shared CPU, e.g. lavapipe).
import { createWebGPUBackend, type WebGPUBackend } from "../../src/backend/webgpu/index.ts";

const size = Number(process.argv[2] ?? 512);
const reps = Number(process.argv[3] ?? 10);
const backend = (await createWebGPUBackend({})) as WebGPUBackend | null;
if (!backend) {
  console.log("no WebGPU adapter");
  process.exit(0);
}
console.log(`device: ${backend.device}`);
const M = size, N = size, K = size;
const a = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i * 0.37));
const b = Float32Array.from({ length: K * N }, (_, i) => Math.cos(i * 0.11));
const ab = backend.alloc(a.byteLength), bb = backend.alloc(b.byteLength), out = backend.alloc(M * N * 4);
backend.upload(ab, a);
backend.upload(bb, b);
const params = { batch: 1, M, N, K, transA: 0, transB: 0, strideA: 0, strideB: 0, hasBias: 0 };

for (const variant of ["matmul", "matmul_tiled"] as const) {
  backend.tuning = { ...backend.tuning, matmul: variant };
  backend.run("matmul", [ab, bb, null], [out], params); // compile + JIT
  const c = new Float32Array(await backend.download(out));
  let maxErr = 0, maxRef = 0;
  for (let s = 0; s < 64; s++) {
    const m = (s * 97) % M, n = (s * 61) % N;
    let ref = 0;
    for (let k = 0; k < K; k++) ref += a[m * K + k] * b[k * N + n];
    maxErr = Math.max(maxErr, Math.abs(c[m * N + n] - ref));
    maxRef = Math.max(maxRef, Math.abs(ref));
  }
  const cpu0 = process.cpuUsage(), t0 = performance.now();
  for (let r = 0; r < reps; r++) backend.run("matmul", [ab, bb, null], [out], params);
  await backend.flush();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const gflop = (2 * M * N * K * reps) / 1e9;
  const cpuS = (cpu.user + cpu.system) / 1e6;
  console.log(
    `${variant.padEnd(13)} ${size}³ x${reps}: ${(gflop / (ms / 1e3)).toFixed(2)} GFLOP/s wall, ` +
      `${(gflop / cpuS).toFixed(2)} GFLOP/CPU-s, ${(ms / reps).toFixed(1)} ms/matmul, max rel err ${(maxErr / maxRef).toExponential(1)}`,
  );
}
backend.dispose();
