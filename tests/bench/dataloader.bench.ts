// dataloader/jsonl_tokenize: what DataLoader worker threads buy when loading is the cost. A JSONL
// file of Tiny Shakespeare rows (~1,500 characters each) tokenized per row by a byte-level BPE
// tokenizer (tokenizeTransform: tokenization and padding in the loader) in batches of 8, read
// three ways per numWorkers (0, 1, 2): the loader alone; the loader feeding a step that waits a
// fixed time per batch with the main thread idle (a GPU step: the device computes, the thread
// awaits the queue); and one that keeps the main thread's core busy for that time (a wasm step,
// which competes with the workers for cores). Reports the ms to the first batch (workers start,
// import the transform, load the tokenizer) and ms per batch after it, medians over rounds.
//   bun tests/bench/dataloader.bench.ts [--tokenizer <dir>] [--rounds n] [--step-ms n]

import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DataLoader } from "../../src/train/data_loader.ts";
import { jsonlExamples } from "../../src/train/streams.ts";
import { tokenizeTransform } from "../../src/train/transforms.ts";
import { createComputeBackend } from "../../src/backend/registry.ts";
import { dispose } from "../../src/tensor/memory.ts";
import { useBackend } from "../../src/tensor/tensor.ts";

export interface DataloaderFigure {
  rows: number;
  batches: number;
  [key: string]: number;
}

const spin = (ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end);
};

export async function benchDataloader({ tokenizer, rounds = 3, stepMs = 20, workers = [0, 1, 2] }: { tokenizer: string; rounds?: number; stepMs?: number; workers?: number[] }): Promise<DataloaderFigure> {
  const text = await readFile(join(import.meta.dir, "..", "..", "data", "tinyshakespeare.txt"), "utf8");
  const dir = await mkdtemp(join(tmpdir(), "kiln-bench-dl-"));
  const file = join(dir, "rows.jsonl");
  const rows: string[] = [];
  for (let at = 0; at < text.length && rows.length < 2000; at = (at + 1500) % (text.length - 1500)) rows.push(JSON.stringify({ text: text.slice(at, at + 1500) }));
  await writeFile(file, rows.join("\n") + "\n");
  const loader = (numWorkers: number) => new DataLoader(jsonlExamples(file), { batchSize: 8, padTokenId: 0, numWorkers, transform: tokenizeTransform({ tokenizer, maxLength: 512 }) });
  // ms to the first batch (worker start, imports, tokenizer load) and ms per batch after it
  const epoch = async (numWorkers: number, step: number, busy: boolean) => {
    const t0 = performance.now();
    let first = 0;
    let n = 0;
    for await (const b of loader(numWorkers).iterate(0, 0)) {
      if (n++ === 0) first = performance.now();
      if (busy) spin(step);
      else if (step) await Bun.sleep(step);
      dispose(b);
    }
    return { first: first - t0, ms: (performance.now() - first) / (n - 1), n };
  };
  const times: Record<string, number[]> = {};
  let batches = 0;
  for (let r = 0; r < rounds; r++) {
    for (const w of workers) {
      for (const [key, step, busy] of [["load", 0, false], [`gpu${stepMs}`, stepMs, false], [`cpu${stepMs}`, stepMs, true]] as const) {
        const { first, ms, n } = await epoch(w, step, busy);
        batches = n;
        (times[`${key}_w${w}_ms`] ??= []).push(ms);
        (times[`first_w${w}_ms`] ??= []).push(first);
      }
    }
  }
  await rm(dir, { recursive: true, force: true });
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return { rows: rows.length, batches, ...Object.fromEntries(Object.entries(times).map(([k, v]) => [k, +median(v).toFixed(2)])) };
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { tokenizer: { type: "string" }, rounds: { type: "string", default: "3" }, "step-ms": { type: "string", default: "20" } } });
  useBackend(await createComputeBackend("wasm"));
  const tokenizer = values.tokenizer ?? join(import.meta.dir, "..", "fixtures", "tokenizers", "shakespeare_llama3");
  console.log(JSON.stringify({ name: "dataloader/jsonl_tokenize", tokenizer, ...(await benchDataloader({ tokenizer, rounds: Number(values.rounds), stepMs: Number(values["step-ms"]) })) }));
  process.exit(0);
}
