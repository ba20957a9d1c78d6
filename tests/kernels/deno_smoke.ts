// Runtime smoke test, run by CI under Deno (`deno run -A tests/kernels/deno_smoke.ts webgpu|wasm`)
// and usable under Bun: creates the named backend through the registry, runs matmul, softmax and
// cross_entropy on a small problem, checks the results against plain float64 math, prints one line
// and exits 0 (1 on a mismatch). On Deno, "webgpu" is navigator.gpu (wgpu).
import { createComputeBackend } from "../../src/backend/registry.ts";

const name = (globalThis as { Deno?: { args: string[] } }).Deno?.args[0] ?? process.argv[2] ?? "wasm";
const backend = await createComputeBackend(name, { device: "cpu" });
const M = 5, K = 7, N = 3;
const a = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i));
const b = Float32Array.from({ length: K * N }, (_, i) => Math.cos(i));
const buf = (data: Float32Array | Int32Array) => {
  const x = backend.alloc(data.byteLength);
  backend.upload(x, data);
  return x;
};
const ab = buf(a), bb = buf(b), logits = backend.alloc(M * N * 4), probs = backend.alloc(M * N * 4);
const targets = buf(Int32Array.from({ length: M }, (_, i) => i % N));
const loss = backend.alloc(M * 4), lse = backend.alloc(M * 4);
backend.run("matmul", [ab, bb, null], [logits], { batch: 1, M, N, K, transA: 0, transB: 0, strideA: 0, strideB: 0, hasBias: 0 });
backend.run("softmax", [logits], [probs], { rows: M, cols: N });
backend.run("cross_entropy", [logits, targets], [loss, lse], { N: M, V: N, ignoreIndex: -100 });
const got = new Float32Array(await backend.download(loss));
let worst = 0;
for (let m = 0; m < M; m++) {
  const row = Array.from({ length: N }, (_, n) => {
    let s = 0;
    for (let k = 0; k < K; k++) s += a[m * K + k] * b[k * N + n];
    return s;
  });
  const mx = Math.max(...row);
  const l = mx + Math.log(row.reduce((acc, v) => acc + Math.exp(v - mx), 0));
  worst = Math.max(worst, Math.abs(got[m] - (l - row[m % N])));
}
const ok = worst < 1e-4;
console.log(`${ok ? "ok" : "FAIL"} ${backend.name} on ${backend.device}: cross-entropy max error ${worst.toExponential(2)}`);
backend.dispose();
if (!ok) {
  if (typeof (globalThis as { Deno?: unknown }).Deno !== "undefined") (globalThis as unknown as { Deno: { exit(c: number): void } }).Deno.exit(1);
  else process.exit(1);
}
