// DataLoader worker threads (numWorkers > 0): the same batches in the same order as numWorkers 0
// for every source workers can rebuild (TensorDataset shuffled per epoch, arrays, JSONL with a
// module transform, token files, datasetFromModule), from any resume position; a worker's error
// names the dataset and index; what cannot move is refused; the engine trains bit-identically
// with performance.dataloaderNumWorkers and ends its workers on stop, abort and error.

import { afterEach, describe, expect, test } from "bun:test";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DataLoader, TensorDataset, type TensorBatch } from "../../src/train/data_loader.ts";
import { DataLoaderWorkerError, datasetFromModule, transformFromModule } from "../../src/train/workers.ts";
import { jsonlExamples, tokenFileWindows } from "../../src/train/streams.ts";
import { ConfigError } from "../../src/train/config.ts";
import { GenericTrainer, GenericTrainerConfig } from "../../src/train/engine.ts";
import { MultiDataLoaderConfig } from "../../src/train/sampling.ts";
import { Linear } from "../../src/nn/layers.ts";
import { AdamW } from "../../src/optim/adamw.ts";
import * as ops from "../../src/ops/index.ts";
import { useBackend, type Tensor } from "../../src/tensor/tensor.ts";
import { Rng, seed } from "../../src/tensor/random.ts";
import { getBackend } from "../backends.ts";

useBackend(await getBackend("wasm"));

const MODULES = new URL("./fixtures/worker_modules.ts", import.meta.url);

/** Counts live worker threads (every Worker the loaders start, minus those terminated). */
const RealWorker = globalThis.Worker;
let live = 0;
let started = 0;
globalThis.Worker = class extends RealWorker {
  constructor(...args: ConstructorParameters<typeof Worker>) {
    super(...args);
    live++;
    started++;
  }
  override terminate() {
    live--;
    super.terminate();
  }
} as typeof Worker;
afterEach(() => expect(live).toBe(0));

async function epoch(loader: DataLoader<any, TensorBatch>, e = 0, skip = 0) {
  const out: Record<string, number[]>[] = [];
  for await (const b of loader.iterate(e, skip)) {
    const row: Record<string, number[]> = {};
    for (const [k, t] of Object.entries(b)) row[k] = [...t.shape, ...Array.from(await t.data())];
    out.push(row);
  }
  return out;
}

function table(n: number) {
  const rng = new Rng(4);
  const x = Array.from({ length: n }, () => [rng.normal(), rng.normal(), rng.normal()]);
  return new TensorDataset({ x, y: x.map((r) => (r[0] > 0 ? 1 : 0)) });
}

describe("DataLoader numWorkers", () => {
  test("TensorDataset, shuffled: same batches and order as numWorkers 0 in each epoch and from a resume position", async () => {
    const ds = table(37);
    const base = new DataLoader(ds, { batchSize: 4, shuffle: true, seed: 5 });
    for (const [numWorkers, prefetchFactor] of [[1, 1], [3, 2], [4, 1]]) {
      const w = new DataLoader(ds, { batchSize: 4, shuffle: true, seed: 5, numWorkers, prefetchFactor });
      for (const e of [0, 1]) expect(await epoch(w, e)).toEqual(await epoch(base, e));
      expect(await epoch(w, 1, 3)).toEqual(await epoch(base, 1, 3));
    }
    expect(await epoch(base, 0)).not.toEqual(await epoch(base, 1)); // the epochs differ: the comparison can fail
    const drop = { batchSize: 5, shuffle: true, seed: 1, dropLast: true };
    expect(await epoch(new DataLoader(ds, { ...drop, numWorkers: 2 }))).toEqual(await epoch(new DataLoader(ds, drop)));
  });

  test("an array of ragged examples, padded with padTokenId (targets with -100), as on the main thread", async () => {
    const rows = Array.from({ length: 11 }, (_, i) => ({ x: Array.from({ length: 1 + (i % 4) }, (_, k) => i + k), y: Array.from({ length: 1 + (i % 4) }, () => i) }));
    const opts = { batchSize: 3, padTokenId: 0 };
    const got = await epoch(new DataLoader(rows, { ...opts, numWorkers: 2 }));
    expect(got).toEqual(await epoch(new DataLoader(rows, opts)));
    expect(got[0].y).toEqual([3, 3, 0, -100, -100, 1, 1, -100, 2, 2, 2]); // shape [3, 3], then rows 0..2
  });

  test("JSONL with a module transform (tokenize in the worker): same batches, any skip; a bad row names the file and index", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kiln-workers-"));
    const file = join(dir, "rows.jsonl");
    const texts = Array.from({ length: 23 }, (_, i) => "the quick brown fox".slice(0, 3 + (i % 9)) + i);
    await writeFile(file, texts.map((text) => JSON.stringify({ text })).join("\n\n") + "\n");
    const transform = transformFromModule(MODULES, "charTokens", { vocab: 50 });
    const opts = { batchSize: 4, padTokenId: 0, transform };
    const base = await epoch(new DataLoader(jsonlExamples(file), opts));
    expect(base.length).toBe(6);
    for (const numWorkers of [1, 2, 3]) {
      expect(await epoch(new DataLoader(jsonlExamples(file), { ...opts, numWorkers }))).toEqual(base);
      expect(await epoch(new DataLoader(jsonlExamples(file), { ...opts, numWorkers }), 0, 4)).toEqual(base.slice(4));
    }
    expect(await epoch(new DataLoader(jsonlExamples(file), { ...opts, numWorkers: 2, dropLast: true }))).toEqual(base.slice(0, 5));

    const bad = join(dir, "bad.jsonl");
    await writeFile(bad, [...texts.slice(0, 9), "boom", ...texts.slice(9)].map((text) => JSON.stringify({ text })).join("\n"));
    const err = await epoch(new DataLoader(jsonlExamples(bad), { ...opts, numWorkers: 2 })).catch((e) => e);
    expect(err).toBeInstanceOf(DataLoaderWorkerError);
    expect(err.message).toMatch(/DataLoader worker 0: loading the JSONL file .*bad\.jsonl index 9 failed: cannot tokenize a row marked boom/);
    const broken = join(dir, "broken.jsonl");
    await writeFile(broken, '{"text": "abcd"}\n{"text": \n');
    const e2 = await epoch(new DataLoader(jsonlExamples(broken), { ...opts, numWorkers: 2 })).catch((e) => e);
    expect(e2.message).toMatch(/index 1 failed: .*broken\.jsonl:2: not a JSON object/);
  });

  test("token files: windows read directly by each worker, same batches as the stream", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kiln-workers-bin-"));
    const path = join(dir, "train.bin");
    await writeFile(path, new Uint8Array(Uint16Array.from({ length: 1001 }, (_, i) => (i * 7) % 60_000).buffer));
    const base = await epoch(new DataLoader(tokenFileWindows(path, { blockSize: 16 }), { batchSize: 5 }));
    expect(base.length).toBe(13); // 62 windows: 12 full batches and one of 2
    const w = new DataLoader(tokenFileWindows(path, { blockSize: 16 }), { batchSize: 5, numWorkers: 3 });
    expect(await epoch(w)).toEqual(base);
    expect(await epoch(w, 0, 7)).toEqual(base.slice(7));
  });

  test("datasetFromModule: a Dataset class of one's own, rebuilt in each worker", async () => {
    const ds = await datasetFromModule(MODULES, "squares", { n: 10 });
    const opts = { batchSize: 3, shuffle: true, seed: 2 };
    expect(await epoch(new DataLoader(ds, { ...opts, numWorkers: 2 }))).toEqual(await epoch(new DataLoader(ds, opts)));
  });

  test("what cannot move to a worker is refused, naming it and suggesting numWorkers 0", () => {
    const closure = { length: 3, get: (i: number) => ({ x: [i] }) };
    expect(() => new DataLoader(closure, { batchSize: 2, numWorkers: 2 })).toThrow(/numWorkers 2: the dataset cannot be moved to a worker thread \(it holds functions or closures\)\. Use numWorkers 0/);
    class Mine { length = 2; get(i: number) { return { x: [i] }; } }
    expect(() => new DataLoader(new Mine(), { batchSize: 2, numWorkers: 1 })).toThrow(/the dataset \(Mine\) cannot be moved.*datasetFromModule/);
    expect(() => new DataLoader([{ x: [1], f: () => 1 }] as never, { batchSize: 2, numWorkers: 1 })).toThrow(/the array's example 0 cannot be moved/);
    expect(() => new DataLoader(table(4), { batchSize: 2, numWorkers: 1, collate: (e) => e })).toThrow(/a collate function cannot be moved.*numWorkers 0/);
    expect(() => new DataLoader(table(4), { batchSize: 2, numWorkers: 1, transform: (e) => e })).toThrow(/a transform function cannot be moved.*transformFromModule/);
    expect(() => new DataLoader(async function* () { yield { x: [1] }; }, { batchSize: 2, numWorkers: 1 })).toThrow(ConfigError);
    expect(() => new DataLoader(table(4), { batchSize: 2, numWorkers: -1 })).toThrow(/numWorkers must be a whole number >= 0/);
  });
});

describe("GenericTrainer performance.dataloaderNumWorkers", () => {
  const names = new MultiDataLoaderConfig({ dataloaderNames: ["train"] });
  function run(numWorkers: number, extra: Record<string, unknown> = {}) {
    seed(7);
    const model = new Linear(3, 2, { std: 0.5 });
    const opt = new AdamW(model.parameters(), { lr: 1e-2, weightDecay: 0 });
    const config = new GenericTrainerConfig({ trainLoaderConfig: names, performance: { dataloaderNumWorkers: numWorkers }, ...extra } as never);
    const trainer = new GenericTrainer<Record<string, Tensor>>({ config, model, optimizers: [opt], log: false });
    trainer.setTrainingStep((t, batch, _i, _d, _n) => ({ loss: ops.crossEntropy((t.model as Linear).forward(batch.x), batch.y) }));
    const loader = new DataLoader(table(30), { batchSize: 4, shuffle: true, seed: 3 });
    return { trainer, loader };
  }

  test("losses bit-identical to numWorkers 0 over two epochs; exact mid-epoch resume with workers", async () => {
    const a = run(0);
    const whole = await a.trainer.fit({ trainLoaders: [a.loader], maxEpochs: 2 });
    const before = started;
    const b = run(2);
    const same = await b.trainer.fit({ trainLoaders: [b.loader], maxEpochs: 2 });
    expect(started - before).toBeGreaterThanOrEqual(4); // the workers really ran (2 per epoch)
    expect(same.lossHistory).toEqual(whole.lossHistory);
    const dir = await mkdtemp(join(tmpdir(), "kiln-workers-resume-"));
    const first = run(2, { outDir: dir });
    const head = await first.trainer.fit({ trainLoaders: [first.loader], maxEpochs: 2, maxSteps: 11 });
    const second = run(2, { outDir: dir });
    const tail = await second.trainer.fit({ trainLoaders: [second.loader], maxEpochs: 2, resumeFrom: dir });
    expect([...head.lossHistory, ...tail.lossHistory]).toEqual(whole.lossHistory);
  });

  test("abort mid-epoch and an error in the step end the worker threads", async () => {
    const { trainer, loader } = run(3);
    const ctrl = new AbortController();
    let n = 0;
    trainer.setTrainingStep((t, batch, _i, _d, _n) => {
      if (++n === 2) ctrl.abort();
      return { loss: ops.crossEntropy((t.model as Linear).forward(batch.x), batch.y) };
    });
    const r = await trainer.fit({ trainLoaders: [loader], maxEpochs: 3, signal: ctrl.signal });
    expect(r.stoppedBy).toBe("interrupt");
    expect(live).toBe(0);
    const failing = run(2);
    failing.trainer.setTrainingStep((_t, _b, i, _d, _n) => {
      if (i === 1) throw new Error("step failed");
      return { loss: ops.crossEntropy((failing.trainer.model as Linear).forward(_b.x), _b.y) };
    });
    await expect(failing.trainer.fit({ trainLoaders: [failing.loader], maxEpochs: 1 })).rejects.toThrow(/step failed/);
    await Bun.sleep(10);
    expect(live).toBe(0);
  });
});

describe("persistentWorkers", () => {
  test("the threads stay between epochs (started once), batches as numWorkers 0, a pass left early does not leak into the next; close() ends them", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kiln-workers-keep-"));
    const file = join(dir, "rows.jsonl");
    await writeFile(file, Array.from({ length: 30 }, (_, i) => JSON.stringify({ text: `row ${i} ${"xyz".repeat(i % 5)}` })).join("\n"));
    const opts = { batchSize: 4, padTokenId: 0, transform: transformFromModule(MODULES, "charTokens", { vocab: 40 }) };
    const base = await epoch(new DataLoader(jsonlExamples(file), opts));
    const keep = new DataLoader(jsonlExamples(file), { ...opts, numWorkers: 2, persistentWorkers: true });
    const before = started;
    expect(await epoch(keep)).toEqual(base);
    for await (const _ of keep.iterate(1, 0)) break; // left after one batch, tasks still in flight
    expect(await epoch(keep, 2, 3)).toEqual(base.slice(3));
    expect(await epoch(keep)).toEqual(base);
    expect(started - before).toBe(2);
    expect(live).toBe(2);
    keep.close();
    expect(live).toBe(0);
    const ds = table(21);
    const shuffled = new DataLoader(ds, { batchSize: 4, shuffle: true, seed: 8, numWorkers: 3, persistentWorkers: true });
    const plain = new DataLoader(ds, { batchSize: 4, shuffle: true, seed: 8 });
    for (const e of [0, 1, 2]) expect(await epoch(shuffled, e)).toEqual(await epoch(plain, e));
    shuffled.close();
  });
});
