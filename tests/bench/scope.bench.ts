// What per-call memory scopes cost each op: an in-process A/B against a baseline tree (another
// commit's src/, e.g. the one before scopes moved to AsyncLocalStorage). Both module graphs are
// loaded into one process, each with its own single-threaded wasm backend, and timed in
// alternating rounds; the figures are medians over rounds of the process's CPU time (not wall
// time: on a shared machine, waiting for a core is not the code's cost).
//   scope/track      the bookkeeping of one new tensor alone (memory.ts track(): joining the
//                    innermost scope), 10000 per scope
//   scope/open       opening and closing one empty scope
//   scope/ops        2000 small elementwise ops ([16] f32) in one scope: the per-op bookkeeping
//                    (track, defaultBackend, scope end) is most of their cost
//   scope/gpt-step   forward + backward + AdamW of a tiny GPT (1 layer, C 32) in one scope
//   scope/decode     generate(): 32 greedy tokens with the KV cache (a scope per token; the
//                    prefill's time included)
// Make a baseline:  mkdir -p /tmp/kiln-base && git archive <rev> src | tar -x -C /tmp/kiln-base &&
//                   ln -s "$PWD/wasm" "$PWD/node_modules" /tmp/kiln-base/
// Run: `npx bun tests/bench/scope.bench.ts --baseline /tmp/kiln-base [--rounds 31] [--json]`
// (`--tree <dir>` compares against another tree than this one: an A/A run shows the noise; the
// tree loaded first tends to time differently, so run it with and without `--this-first`).
// Never assert these timings in tests.

import { parseArgs } from "node:util";
import { join, resolve } from "node:path";

type Kiln = typeof import("../../src/index.ts");

const { values } = parseArgs({
  options: { baseline: { type: "string" }, tree: { type: "string" }, "this-first": { type: "boolean", default: false }, rounds: { type: "string", default: "31" }, json: { type: "boolean", default: false } },
});
if (!values.baseline) {
  console.error("scope.bench: --baseline <dir> is required (a tree holding another commit's src/; see the header)");
  process.exit(2);
}
const rounds = Number(values.rounds);

interface Variant {
  name: string;
  k: Kiln;
  memory: typeof import("../../src/tensor/memory.ts");
  backend: Awaited<ReturnType<Kiln["createComputeBackend"]>>;
}

async function load(name: string, root: string): Promise<Variant> {
  const k: Kiln = await import(join(resolve(root), "src", "index.ts"));
  const memory = await import(join(resolve(root), "src", "tensor", "memory.ts")); // the same module instance index.ts uses
  const backend = await k.createComputeBackend("wasm", { threads: 1 });
  return { name, k, memory, backend };
}

/** Microseconds of CPU time used by this process (every thread). */
const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/** One timed run of a workload on a variant: CPU microseconds per unit (op, step or token). */
type Workload = { name: string; unit: string; setup(v: Variant): Promise<() => Promise<number>> };

const WORKLOADS: Workload[] = [
  {
    name: "scope/track",
    unit: "tensor",
    async setup({ memory }) {
      const fake = Array.from({ length: 10_000 }, () => ({ dispose() {}, disposed: true }));
      return async () => {
        const t0 = cpuUs();
        for (let r = 0; r < 10; r++) memory.scope(() => {
          for (const t of fake) memory.track(t);
          return null;
        });
        return (cpuUs() - t0) / (10 * fake.length);
      };
    },
  },
  {
    name: "scope/open",
    unit: "scope",
    async setup({ memory }) {
      return async () => {
        const t0 = cpuUs();
        for (let r = 0; r < 20_000; r++) memory.scope(() => null);
        return (cpuUs() - t0) / 20_000;
      };
    },
  },
  {
    name: "scope/ops",
    unit: "op",
    async setup({ k, backend }) {
      k.useBackend(backend);
      const x = k.keep(k.randn([16], { rng: new k.Rng(1) }));
      const N = 2000;
      return async () => {
        k.useBackend(backend);
        const t0 = cpuUs();
        k.scope(() => {
          let y = x;
          for (let i = 0; i < N / 2; i++) y = y.mul(x).add(1);
          return null;
        });
        return (cpuUs() - t0) / N;
      };
    },
  },
  {
    name: "scope/gpt-step",
    unit: "step",
    async setup({ k, backend }) {
      k.useBackend(backend);
      k.seed(1);
      const model = new k.GPT({ vocabSize: 64, blockSize: 16, nLayer: 1, nHead: 2, nEmbd: 32 });
      const opt = new k.AdamW(model.parameters(), { lr: 1e-3 });
      const x = k.keep(k.fromArray(Int32Array.from({ length: 64 }, (_, i) => (i * 7) % 64), [4, 16]));
      const y = k.keep(k.fromArray(Int32Array.from({ length: 64 }, (_, i) => (i * 7 + 1) % 64), [4, 16]));
      return async () => {
        k.useBackend(backend);
        const t0 = cpuUs();
        for (let s = 0; s < 5; s++) {
          k.scope(() => {
            model.loss(x, y).backward();
            opt.step();
            opt.zeroGrad();
          });
        }
        return (cpuUs() - t0) / 5;
      };
    },
  },
  {
    name: "scope/decode",
    unit: "token",
    async setup({ k, backend }) {
      k.useBackend(backend);
      k.seed(2);
      const model = new k.GPT({ vocabSize: 64, blockSize: 64, nLayer: 2, nHead: 2, nEmbd: 32 });
      const prompt = [1, 2, 3, 4, 5, 6, 7, 8];
      return async () => {
        k.useBackend(backend);
        const t0 = cpuUs();
        const r = await k.generate(model, null, prompt, { maxNewTokens: 32, stopTokens: [] });
        return (cpuUs() - t0) / r.tokens.length;
      };
    },
  },
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const thisTree = values.tree ?? join(import.meta.dir, "..", "..");
const variants = values["this-first"]
  ? [await load("this tree", thisTree), await load("baseline", values.baseline)].reverse()
  : [await load("baseline", values.baseline), await load("this tree", thisTree)];
const figures: { name: string; unit: string; baseline_us: number; this_us: number; change_pct: number }[] = [];
for (const w of WORKLOADS) {
  const runs = await Promise.all(variants.map((v) => w.setup(v)));
  for (const run of runs) for (let i = 0; i < 3; i++) await run(); // warm-up: JIT, pools, position tables
  const times: number[][] = variants.map(() => []);
  for (let r = 0; r < rounds; r++) {
    // alternate which variant goes first, so drift in the machine's load favours neither
    const order = r % 2 === 0 ? [0, 1] : [1, 0];
    for (const i of order) times[i].push(await runs[i]());
  }
  const [base, mine] = times.map(median);
  figures.push({ name: w.name, unit: w.unit, baseline_us: +base.toFixed(4), this_us: +mine.toFixed(4), change_pct: +((100 * (mine - base)) / base).toFixed(1) });
}
if (values.json) console.log(JSON.stringify(figures));
else for (const f of figures) console.log(`${f.name.padEnd(16)} baseline ${f.baseline_us} µs/${f.unit}   this ${f.this_us} µs/${f.unit}   ${f.change_pct >= 0 ? "+" : ""}${f.change_pct}%`);
for (const v of variants) v.backend.dispose();
