// `bun tests/bench/serve.bench.ts`: kiln serve under concurrent clients, on loopback, against a
// randomly initialised Llama made by kiln (no pretrained weights are downloadable here). The
// server runs as a separate `kiln serve` process; clients are plain fetch() in this one.
//   decode        1 client, then C concurrent clients (default 8): total generated tokens/s over
//                 the wall time, the speed-up, and time to first token (streamed) p50 / p99
//   lora          the same C clients, half asking the base model and half a LoRA adapter
//                 (--lora-modules): adapters decode in their own batch, so this shows the cost
//   load          N clients (default 32) for S seconds (default 30) mixing plain, streaming,
//                 cancelled-after-the-first-chunk and malformed requests: status counts, 5xx,
//                 unanswered requests, RSS and backend memory after a 5 s warm-up of the same mix vs after the run
// Options: --backend wasm|webgpu  --device <d>  --hidden 256 --layers 4 --context 512
//          --clients 8 --requests 3 --tokens 64 --rounds 5 (1-client and C-client phases alternate;
//          medians, and the median of the paired speed-ups, so a busy machine skews both alike)  --load-clients 32 --load-seconds 30  --json
// Figures go to the README; never assert them in tests.

import { parseArgs } from "node:util";
import { join } from "node:path";
import { rm } from "node:fs/promises";
import { init } from "../../src/init.ts";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { makeTinyModel } from "../serve/tiny_model.ts";
import { loadPretrained } from "../../src/models/pretrained.ts";
import { applyLora } from "../../src/nn/lora_model.ts";
import { saveAdapter } from "../../src/io/peft.ts";

const { values: o } = parseArgs({
  options: {
    backend: { type: "string", default: "wasm" }, device: { type: "string" },
    hidden: { type: "string", default: "256" }, layers: { type: "string", default: "4" }, context: { type: "string", default: "512" },
    clients: { type: "string", default: "8" }, requests: { type: "string", default: "3" }, rounds: { type: "string", default: "5" }, tokens: { type: "string", default: "64" },
    "load-clients": { type: "string", default: "32" }, "load-seconds": { type: "string", default: "30" }, json: { type: "boolean" },
  },
});
const num = (k: keyof typeof o) => Number(o[k]);
const NO_EOS = { "299": -100 }; // every request generates exactly max_tokens

await init("wasm"); // only to write the model folder
const hidden = num("hidden");
const dir = await makeTinyModel({ hidden, layers: num("layers"), heads: Math.max(4, hidden / 64), context: num("context") });
const adapterDir = await mkdtemp(join(tmpdir(), "kiln-bench-adapter-"));
{
  const { model } = await loadPretrained(dir);
  applyLora(model, { r: 8, loraAlpha: 16, targetModules: ["q_proj", "v_proj"] });
  await saveAdapter(model, adapterDir);
  model.dispose();
}
const ROOT = join(import.meta.dir, "..", "..");
const args = ["serve", "--model", dir, "--lora-modules", `lora=${adapterDir}`, "--port", "0", "--served-model-name", "bench", "--backend", o.backend!, "--max-batch", String(Math.max(8, num("clients"))), "--max-queue", "256"];
if (o.device) args.push("--device", o.device);
const proc = Bun.spawn([process.execPath, join(ROOT, "src", "cli", "main.ts"), ...args], { stdout: "inherit", stderr: "pipe" });
let banner = "";
const reader = proc.stderr.getReader();
while (!banner.includes("\n")) {
  const { value, done } = await reader.read();
  if (done) throw new Error(`kiln serve exited: ${banner}`);
  banner += new TextDecoder().decode(value);
}
console.error(banner.trim());
void (async () => {
  for (;;) if ((await reader.read()).done) break; // keep draining stderr
})();
const base = /on (http:\/\/[^/\s]+)\/v1/.exec(banner)![1];

const post = (body: object, signal?: AbortSignal) =>
  fetch(`${base}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "bench", ...body }), signal });

/** One streamed greedy request: ms to the first chunk, tokens generated, ms in all. */
async function timed(prompt: string, tokens: number, model = "bench"): Promise<{ ttft: number; tokens: number; ms: number }> {
  const t0 = performance.now();
  const r = await post({ model, prompt, max_tokens: tokens, temperature: 0, logit_bias: NO_EOS, logprobs: 0, stream: true, stream_options: { include_usage: true } }); // logprobs: a chunk per token, even one whose text is held back
  const rd = r.body!.getReader();
  let ttft = NaN;
  let text = "";
  for (;;) {
    const { value, done } = await rd.read();
    if (done) break;
    if (Number.isNaN(ttft)) ttft = performance.now() - t0;
    text += new TextDecoder().decode(value);
  }
  const usage = /"completion_tokens":(\d+)/.exec(text);
  return { ttft, tokens: Number(usage?.[1] ?? 0), ms: performance.now() - t0 };
}

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

async function phase(clients: number, lora = false): Promise<{ tokensPerS: number; ttftP50: number; ttftP99: number; requests: number }> {
  const t0 = performance.now();
  const runs = await Promise.all(Array.from({ length: clients }, async (_, c) => {
    const out = [];
    for (let i = 0; i < num("requests"); i++) out.push(await timed(`client ${c} asks question ${i}: what comes next?`, num("tokens"), lora && c % 2 === 1 ? "lora" : "bench"));
    return out;
  }));
  const wall = (performance.now() - t0) / 1000;
  const all = runs.flat();
  const ttfts = all.map((r) => r.ttft);
  return { tokensPerS: all.reduce((s, r) => s + r.tokens, 0) / wall, ttftP50: quantile(ttfts, 0.5), ttftP99: quantile(ttfts, 0.99), requests: all.length };
}

async function metrics(): Promise<{ rss: number; backend: number }> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const read = (name: string) => Number(new RegExp(`^${name} (\\d+)`, "m").exec(text)![1]);
  return { rss: read("process_resident_memory_bytes"), backend: read("kiln_backend_allocated_bytes") };
}

async function load(clients: number, seconds: number) {
  const statuses = new Map<number, number>();
  let sent = 0;
  let answered = 0;
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  const count = (s: number) => statuses.set(s, (statuses.get(s) ?? 0) + 1);
  await Promise.all(Array.from({ length: clients }, async (_, c) => {
    for (let i = 0; performance.now() < end; i++) {
      const kind = (c * 7 + i) % 20; // 0-7 plain, 8-13 streaming, 14-16 cancelled, 17-19 malformed
      sent++;
      try {
        if (kind >= 17) {
          const bad = [{ prompt: "x", max_tokens: "many" }, { prompt: "x", temperature: 9 }, "{oops"][kind - 17];
          const r = await fetch(`${base}/v1/completions`, { method: "POST", body: typeof bad === "string" ? bad : JSON.stringify({ model: "bench", ...bad }) });
          count(r.status);
          await r.text();
        } else {
          const abort = new AbortController();
          const r = await post({ prompt: `client ${c} request ${i}`, max_tokens: 8 + ((c + i) % 24), temperature: 0.8, stream: kind >= 8 }, abort.signal);
          count(r.status);
          if (kind >= 14) {
            await r.body!.getReader().read();
            abort.abort();
          } else await r.text();
        }
        answered++;
      } catch {
        errors++;
      }
    }
  }));
  return { sent, answered, errors, statuses: Object.fromEntries(statuses), fiveXX: [...statuses].filter(([s]) => s >= 500).reduce((a, [, n]) => a + n, 0) };
}

try {
  await timed("warm up", 8);
  const ones: Awaited<ReturnType<typeof phase>>[] = [];
  const manys: Awaited<ReturnType<typeof phase>>[] = [];
  for (let r = 0; r < num("rounds"); r++) {
    ones.push(await phase(1));
    manys.push(await phase(num("clients")));
  }
  const med = (xs: number[]) => quantile(xs, 0.5);
  const one = { tokensPerS: med(ones.map((x) => x.tokensPerS)), ttftP50: med(ones.map((x) => x.ttftP50)), ttftP99: med(ones.map((x) => x.ttftP99)) };
  const many = { tokensPerS: med(manys.map((x) => x.tokensPerS)), ttftP50: med(manys.map((x) => x.ttftP50)), ttftP99: med(manys.map((x) => x.ttftP99)) };
  const speedups = ones.map((x, i) => manys[i].tokensPerS / x.tokensPerS);
  const decode = {
    name: "serve/decode", model: `llama ${hidden}x${num("layers")} ctx ${num("context")}`, backend: o.backend!, tokens: num("tokens"), rounds: num("rounds"),
    one_client_tok_s: +one.tokensPerS.toFixed(1), clients: num("clients"), many_clients_tok_s: +many.tokensPerS.toFixed(1),
    speedup: +med(speedups).toFixed(2), speedup_min: +Math.min(...speedups).toFixed(2), speedup_max: +Math.max(...speedups).toFixed(2),
    ttft_p50_ms_1: +one.ttftP50.toFixed(1), ttft_p99_ms_1: +one.ttftP99.toFixed(1), ttft_p50_ms: +many.ttftP50.toFixed(1), ttft_p99_ms: +many.ttftP99.toFixed(1),
  };
  console.log(o.json ? JSON.stringify(decode) : decode);
  const mixed = await phase(num("clients"), true);
  const loraFig = { name: "serve/lora", clients: num("clients"), half_on_adapter_tok_s: +mixed.tokensPerS.toFixed(1), all_on_base_tok_s: decode.many_clients_tok_s, ttft_p50_ms: +mixed.ttftP50.toFixed(1), ttft_p99_ms: +mixed.ttftP99.toFixed(1) };
  console.log(o.json ? JSON.stringify(loraFig) : loraFig);
  if (num("load-seconds") > 0) {
    await load(num("load-clients"), 5); // warm-up: the same mix, so that "after warm-up" has seen it all
    await Bun.sleep(2000);
    const warm = await metrics();
    const r = await load(num("load-clients"), num("load-seconds"));
    await Bun.sleep(2000); // cancelled sequences leave at the next step; the heap settles as after the warm-up
    const after = await metrics();
    const loadFig = {
      name: "serve/load", clients: num("load-clients"), seconds: num("load-seconds"), ...r,
      rss_mb_warm: +(warm.rss / 2 ** 20).toFixed(1), rss_mb_after: +(after.rss / 2 ** 20).toFixed(1), rss_change: +((after.rss - warm.rss) / warm.rss).toFixed(3),
      backend_mb_warm: +(warm.backend / 2 ** 20).toFixed(2), backend_mb_after: +(after.backend / 2 ** 20).toFixed(2),
    };
    console.log(o.json ? JSON.stringify(loadFig) : loadFig);
  }
} finally {
  proc.kill("SIGINT");
  await proc.exited;
  await rm(dir, { recursive: true, force: true });
  await rm(adapterDir, { recursive: true, force: true });
}
