// The committed GPT-2 fixture (tests/fixtures/make_gpt_state.py) opens with readSafetensors, holds
// what its JSON says, and re-encodes byte for byte with encodeSafetensors: the Python writer and the
// TS writer agree on the reference layout (dtype order, name order, header padding).

import { describe, expect, test } from "bun:test";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { encodeSafetensors, readSafetensors, type SafetensorsDType, type SafetensorsTensor } from "../../src/io/safetensors.ts";

const FIXTURES = join(import.meta.dir, "..", "fixtures");

describe("gpt2_tiny fixture", async () => {
  const file = await readSafetensors(join(FIXTURES, "gpt2_tiny.safetensors"));
  const info = JSON.parse(await readFile(join(FIXTURES, "gpt2_tiny.json"), "utf8"));
  const { vocab_size: V, n_embd: C, n_layer: L, block_size: Tmax } = info.config;
  const { B, T } = info.batch;

  test("holds every parameter with HF names and shapes, its gradient and its trained value", () => {
    expect(info.param_names.length).toBe(2 + 12 * L + 2);
    expect(file.info("transformer.wte.weight").shape).toEqual([V, C]);
    expect(file.info("transformer.wpe.weight").shape).toEqual([Tmax, C]);
    expect(file.info("transformer.h.1.attn.c_attn.weight").shape).toEqual([C, 3 * C]);
    expect(file.info("transformer.h.1.mlp.c_proj.weight").shape).toEqual([4 * C, C]);
    for (const name of info.param_names as string[]) {
      const p = file.info(name);
      expect(p.dtype).toBe("F32");
      expect(file.info(`grad.${name}`)).toMatchObject({ dtype: "F64", shape: p.shape });
      expect(file.info(`final.${name}`)).toMatchObject({ dtype: "F64", shape: p.shape });
    }
    expect(file.info("logits").shape).toEqual([B, T, V]);
    expect(file.info("idx")).toMatchObject({ dtype: "I32", shape: [B, T] });
  });

  test("scalars agree with the JSON, tokens are in range", async () => {
    expect((await file.readFloat64("loss"))[0]).toBe(info.loss);
    expect([...(await file.readFloat64("losses"))]).toEqual(info.train.losses);
    expect([...(await file.readFloat64("grad_norms"))]).toEqual(info.train.grad_norms);
    expect(info.train.losses[0]).toBe(info.loss);
    for (const name of ["idx", "targets"]) for (const t of await file.read(name)) expect(t >= 0 && t < V).toBe(true);
  });

  test("re-encodes byte for byte", async () => {
    const tensors: Record<string, SafetensorsTensor> = {};
    for (const t of file.tensors) tensors[t.name] = { dtype: t.dtype as SafetensorsDType, shape: t.shape, data: await file.readBytes(t.name) };
    const chunks = encodeSafetensors(tensors, file.metadata);
    const original: Uint8Array = new Uint8Array(await readFile(join(FIXTURES, "gpt2_tiny.safetensors")));
    let at = 0;
    for (const c of chunks) {
      expect(original.subarray(at, at + c.length)).toEqual(c);
      at += c.length;
    }
    expect(at).toBe(original.length);
  });
});
