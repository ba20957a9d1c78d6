// Part of tests/bench/corpus.bench.ts (its own process, so its peak RSS is its own): a few training
// steps of a small GPT with GPT-2's vocabulary on windows of a big .bin token file, memory-mapped by
// TextDataset, through the engine's trainModel. Prints the losses and the steps' time.
// Run: bun tests/bench/corpus_train.ts corpus.bin [steps]

import { buildModel } from "../../src/builder/build.ts";
import { TextDataset } from "../../src/builder/text_dataset.ts";
import { init } from "../../src/index.ts";
import { trainModel } from "../../src/train/trainer.ts";

const [file, stepsArg] = process.argv.slice(2);
const steps = Number(stepsArg ?? 20);
await init("wasm", { seed: 0 });
const t0 = performance.now();
const data = new TextDataset(file, { blockSize: 64, trainSplit: 0.99 });
console.log(`TextDataset: ${data.tokens.length} tokens (${data.tokens.constructor.name}), ${data.train.length} train windows, opened in ${(performance.now() - t0).toFixed(0)} ms`);
const model = buildModel({ modelType: "gpt", vocabSize: 50257, numLayers: 2, numHeads: 2, embeddingDim: 64, maxSeqLength: 64, dropout: 0 }, { log: (l) => console.log(l) });
const t1 = performance.now();
const result = await trainModel(model, data.train, { learningRate: 3e-3, batchSize: 8, epochs: 1, maxSteps: steps, loggingInterval: 1, randomSeed: 0 }, {
  progress: false,
});
const s = (performance.now() - t1) / 1000;
const status = await Bun.file("/proc/self/status").text().catch(() => "");
const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN) / 1024;
console.log(`at the end: RSS ${kb("VmRSS").toFixed(0)} MB = anonymous ${kb("RssAnon").toFixed(0)} MB + file-backed ${kb("RssFile").toFixed(0)} MB (the token file's pages the windows touched: page cache, reclaimable) + shared ${kb("RssShmem").toFixed(0)} MB; peak ${kb("VmHWM").toFixed(0)} MB`);
console.log(`${result.steps} steps (batch 8 x 64 tokens, shuffled windows) in ${s.toFixed(1)} s; final loss ${result.finalLoss.toFixed(3)} (ln 50257 = ${Math.log(50257).toFixed(3)} at the start)`);
