// How loadPretrained moves file bytes into parameters (src/models/pretrained.ts TensorReader): on
// wasm, F32/F16/BF16 are read straight into the parameter's bytes in the linear memory (16-bit data
// widened in place), F64 and other backends go through a staging buffer in chunks. Every path must
// give exactly the f32 values SafetensorsFile.read() converts (the independent reference), write
// nothing outside the parameter, and loading a model must not draw from the global RNG.

import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { readSafetensors, writeSafetensors, type SafetensorsTensor } from "../../src/io/safetensors.ts";
import { f32ArrayToBf16, f32ArrayToF16 } from "../../src/tensor/half.ts";
import { TensorReader } from "../../src/models/pretrained.ts";
import { loadPretrained } from "../../src/models/index.ts";
import { empty, fromArray, useBackend, type Tensor } from "../../src/tensor/tensor.ts";
import { Rng } from "../../src/tensor/random.ts";
import { backendNames, getBackend } from "../backends.ts";

const HF = join(import.meta.dir, "..", "fixtures", "hf");
const tmp = await mkdtemp(join(tmpdir(), "kiln-reader-"));
afterAll(() => rm(tmp, { recursive: true, force: true }));

/** Values with signs, tiny (f16 subnormals), large, and infinities; n of them from seed. */
function values(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = rng.next();
    out[i] = i % 11 === 3 ? (r - 0.5) * 1e-6 : i % 13 === 5 ? (r - 0.5) * 1e5 : (r - 0.5) * 4;
  }
  if (n > 2) [out[0], out[1]] = [Infinity, -Infinity];
  return out;
}

const SHAPES: number[][] = [[7], [3, 5], [0], [33, 17], [1]];
const DTYPES = ["F32", "F16", "BF16", "F64"] as const;

/** A file with every shape in every dtype: name `${dtype}.${i}`. */
async function writeMixed(path: string): Promise<void> {
  const tensors: Record<string, SafetensorsTensor> = {};
  let seed = 1;
  for (const dtype of DTYPES) {
    for (const [i, shape] of SHAPES.entries()) {
      const v = values(shape.reduce((a, b) => a * b, 1), seed++);
      const data = dtype === "F32" ? v : dtype === "F16" ? f32ArrayToF16(v) : dtype === "BF16" ? f32ArrayToBf16(v) : Float64Array.from(v);
      tensors[`${dtype}.${i}`] = { dtype, shape, data };
    }
  }
  await writeSafetensors(path, tensors);
}

const bits = (a: Float32Array | Int32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

describe.each(backendNames)("TensorReader on %s", (backendName) => {
  const modes = [
    { label: "direct where the backend maps its buffers", direct: true, staging: undefined },
    { label: "staged (default staging size)", direct: false, staging: undefined },
    { label: "staged in chunks of a few elements", direct: false, staging: 44 },
    { label: "direct, F64 in chunks of a few elements", direct: true, staging: 44 },
  ];
  test.each(modes)("$label: the same f32 bits as SafetensorsFile.read(), nothing written around", async ({ direct, staging }) => {
    const backend = await getBackend(backendName);
    useBackend(backend);
    const path = join(tmp, `mixed-${backendName}.safetensors`);
    await writeMixed(path);
    const file = await readSafetensors(path);
    const reader = new TensorReader(file.tensors, staging);
    const made: Tensor[] = [];
    try {
      for (const info of file.tensors) {
        // a guard tensor before and after the parameter (adjacent blocks on wasm)
        const before = fromArray(new Float32Array(16).fill(7), [16]);
        const param = empty(info.shape);
        const after = fromArray(new Float32Array(16).fill(9), [16]);
        made.push(before, param, after);
        await reader.load(file, info.name, param, { direct });
        // (no read-back of 0-element tensors: WebGPU refuses 0-byte reads)
        if (param.size > 0) expect(bits((await param.data()) as Float32Array)).toEqual(bits(await file.read(info.name)));
        expect(Array.from(await before.data())).toEqual(new Array(16).fill(7));
        expect(Array.from(await after.data())).toEqual(new Array(16).fill(9));
      }
    } finally {
      await reader.close();
      for (const t of made) t.dispose();
    }
  });
});

describe("loadPretrained", () => {
  test.each(["gpt2", "llama", "qwen2"])("%s fixture (F32, F16, BF16 in that order) on wasm: each parameter holds the file's values exactly", async (family) => {
    useBackend(await getBackend("wasm"));
    const file = await readSafetensors(join(HF, family, "model.safetensors"));
    const { model } = await loadPretrained(join(HF, family), { tokenizer: false });
    try {
      const params = model.stateDict();
      let checked = 0;
      for (const info of file.tensors) {
        const param = params.get(info.name);
        if (!param) continue;
        expect(bits((await param.data()) as Float32Array)).toEqual(bits(await file.read(info.name)));
        checked++;
      }
      expect(checked).toBeGreaterThan(0);
    } finally {
      model.dispose();
    }
  });

  test.each(backendNames)("does not draw from the global RNG (%s)", async (backendName) => {
    useBackend(await getBackend(backendName));
    Rng.global.reseed(5);
    const state = Rng.global.getState();
    const { model } = await loadPretrained(join(HF, "llama"), { tokenizer: false });
    model.dispose();
    expect(Rng.global.getState()).toEqual(state);
  });
});
