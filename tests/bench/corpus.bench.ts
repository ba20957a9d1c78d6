// The big-corpus bench (not in the suite, not in `bun run bench`: minutes and gigabytes):
//   1. writes a ~2 GB text corpus: Tiny Shakespeare paragraphs drawn at random, a third of them with
//      5% of their words replaced by made-up words and numbers (pre-tokens the encoder's cache has
//      not seen, as in a real corpus), seeded;
//   2. `kiln data tokenize` of the whole file with the GPT-2 tokenizer (a child process): wall time,
//      tokens/s and peak RSS (/usr/bin/time's maximum resident set);
//   3. on a sample of the corpus: kiln's encoder on 1 thread (in process), `kiln data tokenize
//      --threads 1|2`, and @huggingface/tokenizers, ids compared;
//   4. a few training steps of a small GPT (GPT-2 vocabulary) from the 2 GB token file, memory-mapped
//      (a child process: peak RSS).
// Run: bun tests/bench/corpus.bench.ts [--dir /tmp/kiln-corpus] [--gb 2] [--sample-mb 32] [--reps 3]
// Prints medians; the machine's load average is printed with them (compare runs on one quiet machine).

import { existsSync, openSync, readFileSync, statSync, writeSync, closeSync } from "node:fs";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { loadTokenizer } from "../../src/data/tokenizer.ts";
import { Rng } from "../../src/tensor/random.ts";

const ROOT = resolve(import.meta.dir, "../..");
const GPT2 = "/work/shared/data/tokenizers/gpt2";
const SHAKESPEARE = "/work/shared/data/tinyshakespeare.txt";
const { values } = parseArgs({ options: { dir: { type: "string", default: "/tmp/kiln-corpus" }, gb: { type: "string", default: "2" }, "sample-mb": { type: "string", default: "32" }, reps: { type: "string", default: "3" }, skip: { type: "string", default: "" } } });
const dir = values.dir!;
const corpus = join(dir, "corpus.txt");
const bin = join(dir, "corpus.bin");
const reps = Number(values.reps);
const skip = new Set(values.skip!.split(",").filter(Boolean));
const load = () => loadavg().map((l) => l.toFixed(1)).join(" ");
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function makeCorpus(path: string, bytes: number): void {
  const paragraphs = readFileSync(SHAKESPEARE, "utf8").split("\n\n").filter((p) => p.trim());
  const rng = new Rng(1234);
  const letters = "abcdefghijklmnopqrstuvwxyz";
  const madeUp = () => {
    if (rng.int(4) === 0) return String(rng.int(100000));
    let w = "";
    for (let n = 3 + rng.int(7); n > 0; n--) w += letters[rng.int(26)];
    return rng.int(5) === 0 ? w[0].toUpperCase() + w.slice(1) : w;
  };
  const fd = openSync(path, "w");
  let written = 0;
  let block: string[] = [];
  let blockLen = 0;
  while (written < bytes) {
    let p = paragraphs[rng.int(paragraphs.length)];
    if (rng.int(3) === 0) p = p.replace(/[A-Za-z]+/g, (w) => (rng.int(20) === 0 ? madeUp() : w));
    block.push(p);
    blockLen += p.length + 2;
    if (blockLen > 16 << 20) {
      written += writeSync(fd, block.join("\n\n") + "\n\n");
      block = [];
      blockLen = 0;
    }
  }
  closeSync(fd);
}

/** Runs a command under /usr/bin/time: wall seconds, CPU seconds (user + system), peak RSS in MB, stdout. */
async function timed(cmd: string[]): Promise<{ s: number; cpu: number; rssMB: number; stdout: string }> {
  const t0 = performance.now();
  const proc = Bun.spawn(["/usr/bin/time", "-f", "maxrss_kb=%M cpu=%U+%S", ...cmd], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const s = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`${cmd.join(" ")} exited ${code}: ${stderr.slice(-2000)}`);
  const kb = Number(/maxrss_kb=(\d+)/.exec(stderr)?.[1]);
  const cpu = /cpu=([\d.]+)\+([\d.]+)/.exec(stderr)!;
  return { s, cpu: Number(cpu[1]) + Number(cpu[2]), rssMB: kb / 1024, stdout };
}

const kilnCli = (...args: string[]) => [process.execPath, join(ROOT, "src/cli/main.ts"), ...args];

console.log(`load average at start: ${load()} (${navigator.hardwareConcurrency} cores)`);
if (!existsSync(corpus) || statSync(corpus).size < Number(values.gb) * 1e9 * 0.99) {
  const t0 = performance.now();
  const { mkdirSync } = await import("node:fs");
  mkdirSync(dir, { recursive: true });
  makeCorpus(corpus, Number(values.gb) * 1e9);
  console.log(`corpus: ${(statSync(corpus).size / 1e9).toFixed(2)} GB written in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}
const size = statSync(corpus).size;

// 3. the sample first (minutes matter less there)
const sampleBytes = Number(values["sample-mb"]) << 20;
const sample = join(dir, "sample.txt");
{
  const all = Bun.file(corpus).slice(0, sampleBytes + 4096);
  const text = await all.text();
  const cut = text.lastIndexOf("\n\n", sampleBytes);
  await Bun.write(sample, text.slice(0, cut + 2));
}
const sampleText = readFileSync(sample, "utf8");
if (!skip.has("sample")) {
  const kiln = await loadTokenizer(GPT2, "kiln");
  const times: number[] = [];
  let kilnIds: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    kilnIds = kiln.encode(sampleText, { addSpecialTokens: false });
    times.push((performance.now() - t0) / 1000);
  }
  const n = kilnIds.length;
  console.log(`sample ${(Buffer.byteLength(sampleText) / 1e6).toFixed(1)} MB, ${n} tokens (load ${load()})`);
  console.log(`  kiln encode, 1 thread, in process: ${(n / median(times) / 1e6).toFixed(2)} M tokens/s (median of ${reps}; first ${(n / times[0] / 1e6).toFixed(2)}, cold cache)`);
  for (const threads of ["1", "2"]) {
    const runs: { s: number; cpu: number }[] = [];
    for (let r = 0; r < reps; r++) runs.push(await timed(kilnCli("data", "tokenize", "--tokenizer", GPT2, "--input", sample, "--out", join(dir, "sample.bin"), "--threads", threads)));
    console.log(`  kiln data tokenize --threads ${threads}: ${(n / median(runs.map((r) => r.s)) / 1e6).toFixed(2)} M tokens/s wall, ${(n / median(runs.map((r) => r.cpu)) / 1e6).toFixed(2)} M tokens per CPU-second (medians of ${reps} runs, start-up included)`);
  }
  const same = Array.from(new Uint16Array(readFileSync(join(dir, "sample.bin")).buffer.slice(0))).every((id, i) => id === kilnIds[i]);
  console.log(`  the .bin equals the in-process ids: ${same}`);
  const ref = await loadTokenizer(GPT2, "reference");
  const hfSample = sampleText.slice(0, Math.min(sampleText.length, 8 << 20));
  const hfTimes: number[] = [];
  let hfIds: number[] = [];
  for (let r = 0; r < Math.min(reps, 2); r++) {
    const t0 = performance.now();
    hfIds = ref.encode(hfSample, { addSpecialTokens: false });
    hfTimes.push((performance.now() - t0) / 1000);
  }
  const kilnOnHf = kiln.encode(hfSample, { addSpecialTokens: false });
  const equal = hfIds.length === kilnOnHf.length && hfIds.every((id, i) => id === kilnOnHf[i]);
  console.log(`  @huggingface/tokenizers (${(ref as { implementation?: string }).implementation}), first ${(hfSample.length / 1e6).toFixed(1)} M chars: ${(hfIds.length / median(hfTimes) / 1e6).toFixed(2)} M tokens/s (best of ${hfTimes.length}: ${(hfIds.length / Math.min(...hfTimes) / 1e6).toFixed(2)}); ids equal to kiln's: ${equal}`);
}

// 2. the whole corpus
if (!skip.has("tokenize")) {
  console.log(`tokenizing ${(size / 1e9).toFixed(2)} GB (load ${load()})`);
  const r = await timed(kilnCli("data", "tokenize", "--tokenizer", GPT2, "--input", corpus, "--out", bin));
  const side = JSON.parse(readFileSync(bin + ".json", "utf8")) as { tokens: number; dtype: string };
  console.log(`  kiln data tokenize: ${side.tokens} tokens (${side.dtype}) in ${r.s.toFixed(0)} s: ${(side.tokens / r.s / 1e6).toFixed(2)} M tokens/s wall, ${(side.tokens / r.cpu / 1e6).toFixed(2)} M tokens per CPU-second (${r.cpu.toFixed(0)} CPU-s), ${(size / r.s / 1e6).toFixed(1)} MB/s, peak RSS ${r.rssMB.toFixed(0)} MB (load ${load()})`);
  console.log(`  ${r.stdout.trim()}`);
}

// 4. training from the token file
if (!skip.has("train")) {
  const r = await timed([process.execPath, join(ROOT, "tests/bench/corpus_train.ts"), bin]);
  console.log(r.stdout.trim().split("\n").map((l) => "  " + l).join("\n"));
  console.log(`  peak RSS of the training process: ${r.rssMB.toFixed(0)} MB (token file ${(statSync(bin).size / 1e9).toFixed(2)} GB; load ${load()})`);
}
