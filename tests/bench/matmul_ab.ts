// In-process A/B of the wasm backend's matmul split settings (src/backend/wasm/matmul.ts
// matmulSplit) on the GPT's shapes: the variants take turns round by round on one backend, so a
// busy machine slows them alike. Prints GFLOP/s medians per variant and shape, and the median of
// the per-round ratios to the first variant.
//   bun tests/bench/matmul_ab.ts --variants "blasMinFlops=3e7;blasMinFlops=4e6" [--threads 2] [--rounds 40]
// A variant is `key=value,...` over matmulSplit's keys ("" = the defaults). Timings: never in tests.

import { parseArgs } from "node:util";
import { createComputeBackend } from "../../src/backend/registry.ts";
import { matmulSplit } from "../../src/backend/wasm/matmul.ts";
import { Rng } from "../../src/tensor/random.ts";

const { values } = parseArgs({
  options: {
    variants: { type: "string", default: ";blasMinFlops=4e6" }, threads: { type: "string", default: "2" },
    rounds: { type: "string", default: "40" }, shapes: { type: "string" },
  },
});

const SHAPES = [
  { name: "512", M: 512, N: 512, K: 512 },
  { name: "768x128x384", M: 768, N: 384, K: 128 },
  { name: "768x512x128", M: 768, N: 128, K: 512 },
  { name: "768x128x65", M: 768, N: 65, K: 128 },
  { name: "768x384x128_tB", M: 768, N: 128, K: 384, transB: true },
  { name: "128x768x384_tA", M: 128, N: 384, K: 768, transA: true },
  { name: "128x768x65_tA", M: 128, N: 65, K: 768, transA: true },
  { name: "768x65x128_tB", M: 768, N: 128, K: 65, transB: true },
  { name: "1024x768x8", M: 1024, N: 8, K: 768 }, // LoRA down (rank 8)
  { name: "1024x8x768", M: 1024, N: 768, K: 8 }, // LoRA up
  { name: "128x128x128", M: 128, N: 128, K: 128 },
  { name: "64x128x128", M: 64, N: 128, K: 128 },
  { name: "32x128x65", M: 32, N: 65, K: 128 },
].filter((s) => !values.shapes || values.shapes.split(",").includes(s.name));

const defaults = { ...matmulSplit };
const variants = (values.variants ?? "").split(";").map((spec) => {
  const v: Record<string, number> = { ...defaults };
  for (const kv of spec.split(",").filter(Boolean)) {
    const [k, x] = kv.split("=");
    if (!(k in defaults)) throw new Error(`unknown key ${k}: ${Object.keys(defaults).join(", ")}`);
    v[k] = Number(x);
  }
  return { spec: spec || "(defaults)", v };
});

const backend = await createComputeBackend("wasm", { threads: Number(values.threads) });
console.log(backend.device);
{ // start the worker pool and give it time to come up before the first timed shape
  const n = 256, x = backend.alloc(n * n * 4), y = backend.alloc(n * n * 4);
  backend.run("matmul", [x, x, null], [y], { batch: 1, M: n, N: n, K: n, transA: 0, transB: 0, strideA: 0, strideB: 0, hasBias: 0 });
  await Bun.sleep(500);
  backend.free(x);
  backend.free(y);
}
const rng = new Rng(1);
const fill = (n: number) => Float32Array.from({ length: n }, () => rng.next() - 0.5);
const rounds = Number(values.rounds);
const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];

for (const s of SHAPES) {
  const a = backend.alloc(s.M * s.K * 4), b = backend.alloc(s.K * s.N * 4), out = backend.alloc(s.M * s.N * 4);
  backend.upload(a, fill(s.M * s.K));
  backend.upload(b, fill(s.K * s.N));
  const params = { batch: 1, M: s.M, N: s.N, K: s.K, transA: s.transA ? 1 : 0, transB: s.transB ? 1 : 0, strideA: 0, strideB: 0, hasBias: 0 };
  const flops = 2 * s.M * s.N * s.K;
  const once = () => backend.run("matmul", [a, b, null], [out], params);
  for (let i = 0; i < 20; i++) once();
  const t0 = performance.now();
  for (let i = 0; i < 5; i++) once();
  const inner = Math.max(1, Math.ceil(10 / ((performance.now() - t0) / 5)));
  const ms = variants.map(() => [] as number[]), ratios = variants.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 ? [...variants.keys()].reverse() : [...variants.keys()];
    const t: number[] = [];
    for (const i of order) {
      Object.assign(matmulSplit, variants[i].v);
      once();
      const t1 = performance.now();
      for (let k = 0; k < inner; k++) once();
      t[i] = (performance.now() - t1) / inner;
    }
    variants.forEach((_, i) => { ms[i].push(t[i]); ratios[i].push(t[0] / t[i]); });
  }
  Object.assign(matmulSplit, defaults);
  const line = variants.map((v, i) => `${v.spec}: ${(flops / q(ms[i], 0.5) / 1e6).toFixed(1)}` + (i ? ` (x${q(ratios[i], 0.5).toFixed(3)})` : "")).join("  |  ");
  console.log(`${s.name.padEnd(16)} GFLOP/s  ${line}`);
  for (const buf of [a, b, out]) backend.free(buf);
}
process.exit(0);
