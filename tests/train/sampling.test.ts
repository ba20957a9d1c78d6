// Sampling strategies (the exact loader order each produces, for loaders of sizes 3, 2, 1 and each
// epoch-length rule) and the DataLoader (seeded shuffling per epoch, padding, skip for resume, streams).

import { describe, expect, test } from "bun:test";
import { EpochSampler, MultiDataLoaderConfig, samplingOrder } from "../../src/train/sampling.ts";
import { DataLoader, TensorDataset, collate } from "../../src/train/data_loader.ts";
import { useBackend } from "../../src/tensor/tensor.ts";
import { getBackend } from "../backends.ts";

useBackend(await getBackend("wasm"));
const names = ["a", "b", "c"];
const cfg = (o: Record<string, unknown>) => new MultiDataLoaderConfig({ dataloaderNames: names, ...o } as never);

describe("sampling strategies, loaders of 3, 2, 1 batches", () => {
  test("SEQUENTIAL: each loader to exhaustion", () => {
    expect(samplingOrder(cfg({ samplingStrategy: "sequential" }), [3, 2, 1])).toEqual([0, 0, 0, 1, 1, 2]);
  });
  test("ROUND_ROBIN: longest skips exhausted loaders, shortest stops at the first, a fixed length restarts", () => {
    expect(samplingOrder(cfg({ samplingStrategy: "round_robin" }), [3, 2, 1])).toEqual([0, 1, 2, 0, 1, 0]);
    expect(samplingOrder(cfg({ samplingStrategy: "round_robin", epochLength: "shortest" }), [3, 2, 1])).toEqual([0, 1, 2, 0, 1]);
    expect(samplingOrder(cfg({ samplingStrategy: "round_robin", epochLength: 8 }), [3, 2, 1])).toEqual([0, 1, 2, 0, 1, 2, 0, 1]);
  });
  test("ALTERNATING: the pattern a, a, b repeated, exhausted entries skipped", () => {
    expect(samplingOrder(cfg({ samplingStrategy: "alternating", alternatingPattern: ["a", "a", "b"] }), [3, 2, 1])).toEqual([0, 0, 1, 0, 1]);
    expect(samplingOrder(cfg({ samplingStrategy: "alternating", alternatingPattern: [2, 0] }), [3, 2, 1])).toEqual([2, 0, 0, 0]);
  });
  test("WEIGHTED: seeded (same seed and epoch, same order), every batch drawn once, frequencies follow the weights", () => {
    const c = cfg({ samplingStrategy: "weighted", dataloaderWeights: [0.5, 0.3, 0.2] });
    const one = samplingOrder(c, [3, 2, 1], 7);
    expect(samplingOrder(c, [3, 2, 1], 7)).toEqual(one);
    expect([...one].sort()).toEqual([0, 0, 0, 1, 1, 2]);
    const orders = new Set(Array.from({ length: 6 }, (_, e) => samplingOrder(c, [3, 2, 1], 7, e).join(",")));
    expect(orders.size).toBeGreaterThan(1); // a new draw every epoch
    const long = samplingOrder(cfg({ samplingStrategy: "weighted", dataloaderWeights: [0.5, 0.3, 0.2], epochLength: 20000 }), [5, 5, 5], 1);
    const share = [0, 1, 2].map((i) => long.filter((x) => x === i).length / long.length);
    expect(share).toBeAllClose([0.5, 0.3, 0.2], { atol: 0.015, rtol: 0 });
  });
  test("the sampler's state continues an epoch exactly", () => {
    const c = cfg({ samplingStrategy: "weighted", dataloaderWeights: [1, 2, 3], epochLength: 12 });
    const full = new EpochSampler(c, 3, 0);
    const whole = Array.from({ length: 12 }, () => full.next());
    const first = new EpochSampler(c, 3, 0);
    const head = Array.from({ length: 5 }, () => first.next());
    const second = new EpochSampler(c, 3, 0);
    second.state = first.state;
    expect([...head, ...Array.from({ length: 7 }, () => second.next())]).toEqual(whole);
  });
});

describe("DataLoader", () => {
  const ds = new TensorDataset({ x: Array.from({ length: 10 }, (_, i) => [i, i + 0.5]), y: Array.from({ length: 10 }, (_, i) => i) });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const ys = async (l: DataLoader<any>, epoch = 0, skip = 0) => {
    const out: number[][] = [];
    for await (const b of l.iterate(epoch, skip)) {
      out.push(Array.from(await b.y.data()));
      b.x.dispose(); b.y.dispose();
    }
    return out;
  };

  test("batches in order, a short last batch unless dropLast; x f32 [B, 2], y i32 [B]", async () => {
    const l = new DataLoader(ds, { batchSize: 4 });
    expect(l.length).toBe(3);
    expect(await ys(l)).toEqual([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
    expect(await ys(new DataLoader(ds, { batchSize: 4, dropLast: true }))).toEqual([[0, 1, 2, 3], [4, 5, 6, 7]]);
    const [b] = await Array.fromAsync(l.iterate(0, 0));
    expect([b.x.dtype, b.x.shape, b.y.dtype, b.y.shape]).toEqual(["f32", [4, 2], "i32", [4]]);
  });

  test("seeded shuffling: a permutation, the same for the same epoch, another for the next; skip resumes mid-epoch", async () => {
    const l = new DataLoader(ds, { batchSize: 3, shuffle: true, seed: 5 });
    const e0 = await ys(l, 0);
    expect(e0.flat().sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(await ys(l, 0)).toEqual(e0);
    expect(await ys(l, 1)).not.toEqual(e0);
    expect(await ys(l, 0, 2)).toEqual(e0.slice(2));
  });

  test("rows of different lengths: inputs padded with padTokenId, targets with -100; no pad id is a clear error", async () => {
    const b = collate([{ x: [1, 2, 3], y: [2, 3, 4] }, { x: [5], y: [6] }], { padTokenId: 0 });
    expect(Array.from(await b.x.data())).toEqual([1, 2, 3, 5, 0, 0]);
    expect(Array.from(await b.y.data())).toEqual([2, 3, 4, 6, -100, -100]);
    expect(() => collate([{ x: [1, 2] }, { x: [3] }])).toThrow(/no pad_token_id is set: add padTokenId \(pad_token_id\) to the config or the TaskSpec/);
  });

  test("an async stream is read in order without loading it all; skip works", async () => {
    let read = 0;
    async function* rows() {
      for (let i = 0; i < 7; i++) {
        read++;
        yield { x: [i], y: i };
      }
    }
    const l = new DataLoader(rows, { batchSize: 3 });
    expect(l.length).toBeUndefined();
    const it = l.iterate(0, 0)[Symbol.asyncIterator]();
    const first = (await it.next()).value!;
    expect(read).toBe(3);
    expect(Array.from(await first.y.data())).toEqual([0, 1, 2]);
    expect(await ys(l, 0, 1)).toEqual([[3, 4, 5], [6]]);
    expect(() => new DataLoader(rows, { batchSize: 2, shuffle: true })).toThrow(/shuffle needs an indexable source/);
  });
});
