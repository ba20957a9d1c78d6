// Kernel lab for the WASM kernels other than matmul (tests/bench/matmul.bench.ts has that one):
// times each kernel at the sizes of a GPT training step (B·T = 768, C = 768 or 128, V = 65 and
// 50257) and of KV-cache decoding, and prints ms and GB/s or GFLOP/s.
// Run: `npx bun tests/bench/kernels.bench.ts [--filter attention] [--threads 2]`. Correctness lives
// in tests/backend/*.test.ts. With 1 thread the figures are per-call process CPU time (median),
// robust to other tenants; with more (attention, cross_entropy split over the pool), wall time.

import { parseArgs } from "node:util";
import type { DeviceBuffer } from "../../src/backend/backend.ts";
import type { KernelName, KernelParams } from "../../src/backend/kernels.ts";
import { createComputeBackend } from "../../src/backend/registry.ts";
import { ints, uniform } from "../backend/harness.ts";

const { values } = parseArgs({
  options: { filter: { type: "string" }, ms: { type: "string", default: "300" }, threads: { type: "string", default: "1" } },
});
const threads = Number(values.threads);
const backend = await createComputeBackend("wasm", { threads });
if (threads > 1) {
  const { threadPool } = await import("../../src/backend/wasm/threads.ts");
  const pool = threadPool((backend as import("../../src/backend/wasm/index.ts").WasmBackend).unsafeRuntime);
  pool.startWorkers();
  await pool.whenReady();
}
const held: DeviceBuffer[] = [];
const buf = (x: Float32Array | Int32Array) => {
  const d = backend.alloc(x.byteLength);
  backend.upload(d, x);
  held.push(d);
  return d;
};
const out = (n: number) => buf(new Float32Array(n));

/** Times one launch; `bytes` moved or `flops` done per launch give the rate column. */
function bench<K extends KernelName>(
  label: string, kernel: K, inputs: (DeviceBuffer | null)[], outputs: DeviceBuffer[], params: KernelParams<K>,
  rate: { bytes?: number; flops?: number },
): void {
  if (values.filter && !label.includes(values.filter)) return;
  const run = () => backend.run(kernel, inputs, outputs, params);
  for (let i = 0; i < 3; i++) run(); // tier-up
  const cpu: number[] = [];
  const t0 = performance.now();
  while (performance.now() - t0 < Number(values.ms) || cpu.length < 5) {
    const c = process.cpuUsage(), w = performance.now();
    run();
    const d = process.cpuUsage(c);
    cpu.push(threads > 1 ? performance.now() - w : (d.user + d.system) / 1000);
  }
  cpu.sort((a, b) => a - b);
  const ms = cpu[cpu.length >> 1];
  const r = rate.flops ? `${(rate.flops / ms / 1e6).toFixed(2)} GFLOP/s` : `${((rate.bytes ?? 0) / ms / 1e6).toFixed(1)} GB/s`;
  console.log(`${label.padEnd(44)} ${ms.toFixed(3).padStart(8)} ms  (best ${cpu[0].toFixed(3)})  ${r}`);
}

console.log(`kiln kernel lab on ${backend.device}`);
// ---- elementwise and rows: x [768, 512] ----
const n = 768 * 512;
const x = buf(uniform(n, 1)), y = buf(uniform(n, 2)), o = out(n);
bench("add 768x512", "add", [x, y], [o], { n, na: n, nb: n }, { bytes: n * 12 });
bench("exp 768x512", "exp", [x], [o], { n }, { bytes: n * 8 });
bench("gelu 768x512", "gelu", [x], [o], { n }, { bytes: n * 8 });
const o2 = out(n);
bench("gelu_with_grad 768x512", "gelu_with_grad", [x], [o, o2], { n }, { bytes: n * 12 });
bench("mul 768x512 (gelu's backward)", "mul", [x, y], [o], { n, na: n, nb: n }, { bytes: n * 12 });
bench("softmax 768x512", "softmax", [x], [o], { rows: 768, cols: 512 }, { bytes: n * 8 });
bench("softmax 4096x64", "softmax", [x], [o], { rows: 4096, cols: 64 }, { bytes: 4096 * 64 * 8 });
const [rows, C] = [512, 768];
const w = buf(uniform(C, 3)), b = buf(uniform(C, 4)), mean = out(rows), rstd = out(rows), dw = out(C), db = out(C);
bench("layer_norm 512x768", "layer_norm", [x, w, b], [o, mean, rstd], { rows, C, eps: 1e-5 }, { bytes: rows * C * 8 });
bench("layer_norm_backward 512x768", "layer_norm_backward", [y, x, w, mean, rstd], [o, dw, db], { rows, C }, { bytes: rows * C * 12 });
bench("rms_norm 512x768", "rms_norm", [x, w], [o, rstd], { rows, C, eps: 1e-6 }, { bytes: rows * C * 8 });
bench("sum 512x768 over rows (bias grad)", "sum", [x], [dw], { outer: 1, len: rows, inner: C }, { bytes: rows * C * 4 });
bench("sum_squares 768x512", "sum_squares", [x], [out(1)], { n, accumulate: 0 }, { bytes: n * 4 });
const transpose = { n, rank: 2, offset: 0, d0: 1, d1: 1, d2: 1, d3: 1, d4: 512, d5: 768, s0: 0, s1: 0, s2: 0, s3: 0, s4: 1, s5: 512 };
bench("copy transpose 768x512", "copy", [x], [o], transpose, { bytes: n * 8 });

// ---- attention: training (B 12, T 64, H 4, D 32) and decode (T 1, S 2048, H 32, Hkv 4, D 64) ----
const [B, T, H, D] = [12, 64, 4, 32];
const q = buf(uniform(B * T * H * D, 5)), k = buf(uniform(B * T * H * D, 6)), v = buf(uniform(B * T * H * D, 7));
const ao = out(B * T * H * D), lse = out(B * H * T), dq = out(B * T * H * D), dk = out(B * T * H * D), dv = out(B * T * H * D);
const ap = { B, T, S: T, H, Hkv: H, D, scale: 1 / Math.sqrt(D), causal: 1 };
const aflops = B * H * T * T * D * 2; // causal: half of 4·T²·D per (b, h)
bench("attention B12 T64 H4 D32 causal", "attention", [q, k, v], [ao, lse], ap, { flops: aflops });
bench("attention_backward B12 T64 H4 D32 causal", "attention_backward", [ao, q, k, v, ao, lse], [dq, dk, dv], ap, { flops: 2 * aflops });
bench("rope B12 T64 H4 D32", "rope", [q], [ao], { B, T, H, D, theta: 10000, offset: 0 }, { bytes: B * T * H * D * 8 });
const S = 2048;
const kc = buf(uniform(S * 4 * 64, 8)), vc = buf(uniform(S * 4 * 64, 9)), q1 = buf(uniform(32 * 64, 10));
const dp = { B: 1, T: 1, S, H: 32, Hkv: 4, D: 64, scale: 0.125, causal: 1 };
bench("attention decode T1 S2048 H32 Hkv4 D64", "attention", [q1, kc, vc], [ao, lse], dp, { flops: 4 * S * 32 * 64 });

// ---- cross-entropy, embedding, adamw ----
const N = 768;
for (const V of [65, 50257]) {
  const lg = buf(uniform(N * V, 11)), tg = buf(ints(N, 12, 0, V)), loss = out(N), l2 = out(N), dl = buf(uniform(N, 13)), dlg = out(N * V);
  bench(`cross_entropy N768 V${V}`, "cross_entropy", [lg, tg], [loss, l2], { N, V, ignoreIndex: -100 }, { bytes: N * V * 4 });
  bench(`cross_entropy_backward N768 V${V}`, "cross_entropy_backward", [lg, tg, l2, dl], [dlg], { N, V, ignoreIndex: -100 }, { bytes: N * V * 8 });
}
const ids = buf(ints(768, 16, 0, 65)), wte = buf(uniform(65 * 768, 17));
bench("embedding 768 ids, C 768", "embedding", [ids, wte], [o], { n: 768, V: 65, C: 768 }, { bytes: 768 * 768 * 8 });
bench("embedding_backward 768 ids, C 768", "embedding_backward", [ids, o], [wte], { n: 768, V: 65, C: 768 }, { bytes: 768 * 768 * 12 });
const P = 1 << 20;
const g = buf(uniform(P, 14)), pp = buf(uniform(P, 15)), m = out(P), vv = out(P);
const adam = { n: P, lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 3, maxNorm: 0 };
bench("adamw 1M params", "adamw", [g, null], [pp, m, vv], adam, { bytes: P * 20 });

for (const d of held) backend.free(d);
backend.dispose();
