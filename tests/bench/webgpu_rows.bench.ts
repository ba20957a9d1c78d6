// WebGPU row-kernel lab: time per launch of the kernels that reduce rows (softmax, layer_norm,
// rms_norm, cross_entropy, sum, sum_squares, their backwards; attention_row) under each variant
// (subgroups on/off) and threads per row, at GPT-like shapes. Not a test:
// `bun tests/bench/webgpu_rows.bench.ts [reps]`. Reports the median µs per launch, wall and
// process-CPU (steadier on a shared CPU, e.g. lavapipe). Results are checked by tests/backend.
import type { KernelName, KernelParams } from "../../src/backend/kernels.ts";
import { createWebGPUBackend, type WebGPUBackend } from "../../src/backend/webgpu/index.ts";
import type { DeviceBuffer } from "../../src/backend/backend.ts";

const reps = Number(process.argv[2] ?? 5);
const backend = (await createWebGPUBackend({})) as WebGPUBackend | null;
if (!backend) {
  console.log("no WebGPU adapter");
  process.exit(0);
}
console.log(`device: ${backend.device}`);

interface Case { name: string; kernel: KernelName; inputs: number[]; ints?: number[]; outputs: number[]; params: object }
const R = 768, C = 128;
const CASES: Case[] = [
  { name: "softmax 768x64", kernel: "softmax", inputs: [R * 64], outputs: [R * 64], params: { rows: R, cols: 64 } },
  { name: "softmax_backward 768x64", kernel: "softmax_backward", inputs: [R * 64, R * 64], outputs: [R * 64], params: { rows: R, cols: 64 } },
  { name: "layer_norm 768x128", kernel: "layer_norm", inputs: [R * C, C, C], outputs: [R * C, R, R], params: { rows: R, C, eps: 1e-5 } },
  { name: "layer_norm_backward 768x128", kernel: "layer_norm_backward", inputs: [R * C, R * C, C, R, R], outputs: [R * C, C, C], params: { rows: R, C } },
  { name: "rms_norm 768x768", kernel: "rms_norm", inputs: [R * 768, 768], outputs: [R * 768, R], params: { rows: R, C: 768, eps: 1e-5 } },
  { name: "rms_norm_backward 768x768", kernel: "rms_norm_backward", inputs: [R * 768, R * 768, 768, R], outputs: [R * 768, 768], params: { rows: R, C: 768 } },
  { name: "cross_entropy 768x65", kernel: "cross_entropy", inputs: [R * 65], ints: [R], outputs: [R, R], params: { N: R, V: 65, ignoreIndex: -100 } },
  { name: "cross_entropy 64x50257", kernel: "cross_entropy", inputs: [64 * 50257], ints: [64], outputs: [64, 64], params: { N: 64, V: 50257, ignoreIndex: -100 } },
  { name: "sum 768x128 (rows)", kernel: "sum", inputs: [R * C], outputs: [R], params: { outer: R, len: C, inner: 1 } },
  { name: "sum_squares 1M", kernel: "sum_squares", inputs: [1 << 20], outputs: [1], params: { n: 1 << 20, accumulate: 0 } },
  // decoding: one query row per head against a cache of S keys (attention_row; "thread" = a thread per row)
  ...[[12, 256, 64], [32, 1024, 128]].map(([H, S, D]) => ({
    name: `attention T=1 H=${H} S=${S} D=${D}`, kernel: "attention" as const, inputs: [H * D, S * H * D, S * H * D], outputs: [H * D, H],
    params: { B: 1, T: 1, S, H, Hkv: H, D, scale: 0.125, causal: 1 },
  })),
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const variants: { subgroups: boolean; rowThreads: number; attentionRows?: number }[] = [
  ...(backend.driver.features.subgroups ? [8, 16, 32, 64].map((rowThreads) => ({ subgroups: true, rowThreads })) : []),
  ...[8, 16, 32, 64].map((rowThreads) => ({ subgroups: false, rowThreads })),
];
const base = backend.tuning;
for (const c of CASES) {
  const held: DeviceBuffer[] = [];
  const buf = (n: number, data?: Float32Array | Int32Array) => {
    const b = backend.alloc(n * 4);
    backend.upload(b, data ?? Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) * 2));
    held.push(b);
    return b;
  };
  const ins = c.inputs.map((n) => buf(n));
  if (c.ints) ins.splice(1, 0, ...c.ints.map((n) => buf(n, Int32Array.from({ length: n }, (_, i) => (i * 7) % 65))));
  const outs = c.outputs.map((n) => buf(n));
  const line: string[] = [];
  const mine = c.kernel === "attention" ? [{ subgroups: false, rowThreads: 8, attentionRows: 0 }, ...variants] : variants;
  for (const v of mine) {
    backend.tuning = { ...base, attentionRows: Infinity, ...v };
    const run = () => backend.run(c.kernel, ins, outs, c.params as KernelParams<typeof c.kernel>);
    run();
    await backend.flush(); // compile + JIT
    const t0 = performance.now();
    run();
    await backend.flush();
    const inner = Math.max(1, Math.ceil(30 / Math.max(performance.now() - t0, 0.05)));
    const wall: number[] = [], cpu: number[] = [];
    for (let r = 0; r < reps; r++) {
      const c0 = process.cpuUsage(), w0 = performance.now();
      for (let i = 0; i < inner; i++) run();
      await backend.flush();
      wall.push(((performance.now() - w0) * 1e3) / inner);
      const d = process.cpuUsage(c0);
      cpu.push((d.user + d.system) / inner);
    }
    const name = v.attentionRows === 0 ? "thread" : `${v.subgroups ? "sg" : "wg"}${v.rowThreads}`;
    line.push(`${name}: ${median(wall).toFixed(0)}/${median(cpu).toFixed(0)}`);
  }
  console.log(`${c.name.padEnd(30)} µs wall/cpu  ${line.join("  ")}`);
  for (const b of held) backend.free(b);
}
backend.tuning = base;
backend.dispose();
