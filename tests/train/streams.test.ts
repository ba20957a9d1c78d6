// Streaming data from disk: JSONL objects in order (a bad line named by number), token-file windows
// (uint16 and uint32 by the sidecar or the dtype option, a token split across read chunks), both through a DataLoader.

import { describe, expect, test } from "bun:test";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jsonlExamples, tokenFileWindows } from "../../src/train/streams.ts";
import { DataLoader } from "../../src/train/data_loader.ts";
import { useBackend } from "../../src/tensor/tensor.ts";
import { getBackend } from "../backends.ts";

useBackend(await getBackend("wasm"));

describe("streams", () => {
  test("JSONL rows stream into batches; a bad line is named", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kiln-jsonl-"));
    const file = join(dir, "rows.jsonl");
    await writeFile(file, Array.from({ length: 5 }, (_, i) => JSON.stringify({ x: [i, i + 1], y: i % 2 })).join("\n") + "\n\n");
    const loader = new DataLoader(jsonlExamples(file), { batchSize: 2 });
    const ys: number[][] = [];
    for await (const b of loader.iterate(0, 0)) ys.push(Array.from(await b.y.data()));
    expect(ys).toEqual([[0, 1], [0, 1], [0]]);
    const bad = join(dir, "bad.jsonl");
    await writeFile(bad, '{"x": [1], "y": 0}\n{"x": [2], "y": \n');
    expect(Array.fromAsync(jsonlExamples(bad)())).rejects.toThrow(/bad\.jsonl:2: not a JSON object/);
  });

  test("token files: consecutive windows of blockSize + 1, y shifted by one (uint16 and uint32)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kiln-bin-"));
    const n = 70_000; // more than one read chunk: tokens straddle chunk edges
    const u16 = new Uint16Array(n).map((_, i) => i % 65_000);
    await writeFile(join(dir, "train.bin"), new Uint8Array(u16.buffer));
    const windows = await Array.fromAsync(tokenFileWindows(join(dir, "train.bin"), { blockSize: 1000 })());
    expect(windows.length).toBe(Math.floor((n - 1) / 1000));
    for (const [k, w] of windows.entries()) {
      expect(w.x[0]).toBe((k * 1000) % 65_000);
      expect(w.y[999]).toBe((k * 1000 + 1000) % 65_000);
    }
    const u32 = Uint32Array.from({ length: 21 }, (_, i) => 100_000 + i);
    await writeFile(join(dir, "t.bin"), new Uint8Array(u32.buffer));
    // without a sidecar the file is uint16 unless the dtype is named
    const asU16 = await Array.fromAsync(tokenFileWindows(join(dir, "t.bin"), { blockSize: 10 })());
    expect(asU16[0].x[0]).toBe(100_000 & 0xffff);
    const named = await Array.fromAsync(tokenFileWindows(join(dir, "t.bin"), { blockSize: 10, dtype: "uint32" })());
    expect(named.map((w) => [w.x[0], w.y[9]])).toEqual([[100_000, 100_010], [100_010, 100_020]]);
    // the sidecar `kiln data tokenize` writes decides, and contradicting it is an error
    await writeFile(join(dir, "t.bin.json"), JSON.stringify({ dtype: "uint32", vocabSize: 100_021, tokens: 21 }));
    const w32 = await Array.fromAsync(tokenFileWindows(join(dir, "t.bin"), { blockSize: 10 })());
    expect(w32.map((w) => [w.x[0], w.y[9]])).toEqual([[100_000, 100_010], [100_010, 100_020]]);
    await expect(Array.fromAsync(tokenFileWindows(join(dir, "t.bin"), { blockSize: 10, dtype: "uint16" })())).rejects.toThrow(/dtype uint16 was asked but .*t\.bin\.json says uint32/);
    await writeFile(join(dir, "t.bin.json"), JSON.stringify({ dtype: "uint16", tokens: 21 }));
    await expect(Array.fromAsync(tokenFileWindows(join(dir, "t.bin"), { blockSize: 10 })())).rejects.toThrow(/says 21 tokens but the file holds 42 uint16 tokens/);
    await writeFile(join(dir, "t.bin.json"), JSON.stringify({ dtype: "uint32", tokens: 21 }));
    const batches = await Array.fromAsync(new DataLoader(tokenFileWindows(join(dir, "t.bin"), { blockSize: 10 }), { batchSize: 2 }).iterate(0, 0));
    expect(batches[0].x.shape).toEqual([2, 10]);
    expect(Array.from(await batches[0].x.data()).slice(0, 2)).toEqual([100_000, 100_001]);
    expect(batches[0].x.dtype).toBe("i32");
  });
});
