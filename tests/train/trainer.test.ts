// The Trainer on a tiny character GPT: exact resume (stop at step N, resume, same losses to the
// bit as an uninterrupted run), interrupt -> checkpoint, NaN -> stop keeping the last good
// checkpoint, corrupt checkpoints are refused, metrics and plot are written, the loss falls.

import { describe, expect, test } from "bun:test";
import { mkdtemp, readFile, readdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GPT } from "../../src/models/gpt.ts";
import { TokenDataset } from "../../src/data/dataset.ts";
import { CharTokenizer } from "../../src/data/tokenizer.ts";
import { Trainer, type TrainerOptions } from "../../src/train/trainer.ts";
import { seed } from "../../src/tensor/random.ts";
import { useBackend } from "../../src/tensor/tensor.ts";
import { loadCheckpoint } from "../../src/io/checkpoint.ts";
import { parseMetrics } from "../../src/train/metrics.ts";
import { isTraining } from "../../src/tensor/mode.ts";
import type { Tensor } from "../../src/tensor/tensor.ts";
import { getBackend } from "../backends.ts";

const TEXT = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n".repeat(40);
const tokenizer = CharTokenizer.fromText(TEXT);
const dataset = new TokenDataset(Int32Array.from(tokenizer.encode(TEXT)), 16);

useBackend(await getBackend("wasm"));

function makeModel(dropout = 0): GPT {
  seed(7);
  return new GPT({ vocabSize: tokenizer.vocabSize, blockSize: 16, nLayer: 2, nHead: 2, nEmbd: 32, dropout });
}

const ARGS = { iters: 12, decayIters: 12, batchSize: 4, evalInterval: 4, evalIters: 2, finalEvalIters: 2, logInterval: 2, checkpointInterval: 6, warmupIters: 2, seed: 3 };

async function run(options: Partial<TrainerOptions> & { outDir: string | null }, model = makeModel(0.1)) {
  const trainer = new Trainer({ model, data: dataset, args: ARGS, progress: false, ...options });
  const result = await trainer.fit();
  return { trainer, result, model };
}

describe("trainer", () => {
  test("resume is exact: 6 steps + resume to 12 == 12 uninterrupted (with dropout)", async () => {
    const full = await run({ outDir: null });
    const dir = await mkdtemp(join(tmpdir(), "kiln-resume-"));
    const first = await run({ outDir: dir, args: { ...ARGS, iters: 6 } });
    expect(first.result.steps).toBe(6);
    first.model.dispose();
    const second = await run({ outDir: dir, resume: true });
    expect(second.result.steps).toBe(12);
    expect([...first.result.lossHistory, ...second.result.lossHistory]).toEqual(full.result.lossHistory);
    expect(second.result.finalValLoss).toBe(full.result.finalValLoss!);
    const metrics = parseMetrics(await readFile(join(dir, "metrics.jsonl"), "utf8"));
    expect(metrics.filter((r) => r.loss !== undefined).map((r) => r.step)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    full.model.dispose();
    second.model.dispose();
  });

  test("writes metrics.jsonl, loss.svg and checkpoints; the loss falls", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kiln-run-"));
    const { result, model } = await run({ outDir: dir, args: { ...ARGS, iters: 30, decayIters: 30, lr: 3e-3 } }, makeModel());
    expect(result.stoppedBy).toBe("done");
    expect(result.lossHistory[result.lossHistory.length - 1]).toBeLessThan(result.lossHistory[0] - 0.5);
    const files = await readdir(dir);
    expect(files).toEqual(expect.arrayContaining(["metrics.jsonl", "loss.svg", "checkpoints"]));
    expect(await readFile(join(dir, "loss.svg"), "utf8")).toContain("<path");
    const metrics = parseMetrics(await readFile(join(dir, "metrics.jsonl"), "utf8"));
    expect(metrics.some((r) => typeof r.val_loss === "number")).toBe(true);
    expect(metrics.find((r) => r.step === 2)).toMatchObject({ step: 2, loss: expect.any(Number), tokens_per_s: expect.any(Number) });
    const ckpts = (await readdir(join(dir, "checkpoints"))).filter((d) => d.startsWith("step-"));
    expect(ckpts.length).toBeLessThanOrEqual(2);
    expect(ckpts).toContain("step-0000030");
    model.dispose();
  });

  test("interrupt() stops after the step and saves a checkpoint", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kiln-int-"));
    const model = makeModel();
    const trainer: Trainer = new Trainer({
      model, data: dataset, args: { ...ARGS, checkpointInterval: 0 }, progress: false, outDir: dir,
      hooks: [{ onBatchEnd: (_t, _b, { step }) => { if (step === 5) trainer.interrupt(); } }],
    });
    const result = await trainer.fit();
    expect(result.stoppedBy).toBe("interrupt");
    expect(result.steps).toBe(5);
    const state = await loadCheckpoint(join(dir, "checkpoints"), { model });
    expect(state.step).toBe(5);
    model.dispose();
  });

  test("a NaN loss stops the run and keeps the last good checkpoint", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kiln-nan-"));
    const model = makeModel();
    let calls = 0;
    const poisoned = (m: typeof model, b: { x: Tensor; y: Tensor }) => {
      const loss = m.loss(b.x, b.y);
      return isTraining(m) && ++calls > 8 ? loss.mul(Number.NaN) : loss;
    };
    const { result } = await run({ outDir: dir, loss: poisoned as never, args: { ...ARGS, checkpointInterval: 3 } }, model);
    expect(result.stoppedBy).toBe("nan");
    expect(result.steps).toBe(9);
    const latest = JSON.parse(await readFile(join(dir, "checkpoints", "latest.json"), "utf8"));
    expect(latest.step).toBe(6);
    model.dispose();
  });

  test("a corrupted checkpoint is refused with a clear error", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kiln-bad-"));
    const { model } = await run({ outDir: dir, args: { ...ARGS, iters: 6 } });
    const latest = JSON.parse(await readFile(join(dir, "checkpoints", "latest.json"), "utf8"));
    const weights = join(dir, "checkpoints", latest.dir, "model.safetensors");
    const bytes = new Uint8Array(await readFile(weights));
    bytes[bytes.length - 3] ^= 0xff;
    await writeFile(weights, bytes);
    expect(loadCheckpoint(join(dir, "checkpoints"), { model })).rejects.toThrow(/corrupt \(checksum mismatch\)/);
    model.dispose();
  });
});
