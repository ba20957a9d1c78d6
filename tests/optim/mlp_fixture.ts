// The two-layer tanh MLP of tests/fixtures/make_trainer_ref.py, built in kiln and loaded with the
// fixture's float32 initial weights, plus helpers to read the fixture's batches and compare
// parameters. Shared by tests/optim and tests/train.

import { expect } from "bun:test";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Module } from "../../src/nn/module.ts";
import { Linear } from "../../src/nn/layers.ts";
import * as ops from "../../src/ops/index.ts";
import { fromArray, type Tensor } from "../../src/tensor/tensor.ts";
import type { Backend } from "../../src/backend/backend.ts";

export const REF = JSON.parse(await readFile(join(import.meta.dir, "..", "fixtures", "trainer_ref.json"), "utf8"));

export class Mlp extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(backend?: Backend) {
    super();
    this.fc1 = this.module("fc1", new Linear(6, 8, { backend }));
    this.fc2 = this.module("fc2", new Linear(8, 4, { backend }));
    const values = new Map<string, { shape: readonly number[]; data: Float32Array }>();
    for (const [name, data] of Object.entries(REF.init as Record<string, number[]>)) values.set(name, { shape: REF.init_shapes[name], data: Float32Array.from(data) });
    this.loadStateDict(values);
  }
  forward(x: Tensor): Tensor {
    return this.fc2.forward(ops.tanh(this.fc1.forward(x))); // [B, 4]
  }
  loss(x: Tensor, y: Tensor): Tensor {
    return ops.crossEntropy(this.forward(x), y);
  }
}

/** Rows [lo, hi) of the fixture's train (or val) set as { x [n, 6] f32, y [n] i32 }. */
export function rows(lo: number, hi: number, split: "train" | "val" = "train", backend?: Backend): { x: Tensor; y: Tensor } {
  const xs: number[] = split === "train" ? REF.x : REF.x_val;
  const ys: number[] = split === "train" ? REF.y : REF.y_val;
  return {
    x: fromArray(Float32Array.from(xs.slice(lo * 6, hi * 6)), [hi - lo, 6], { backend }),
    y: fromArray(Int32Array.from(ys.slice(lo, hi)), [hi - lo], { dtype: "i32", backend }),
  };
}

/** Every named parameter of `model` equals `want` (name -> flat values) within atol. */
export async function expectParams(model: Module, want: Record<string, number[]>, atol: number): Promise<void> {
  for (const [name, t] of model.namedParameters()) {
    expect(Array.from(await t.data())).toBeAllClose(want[name], { atol, rtol: 0 });
  }
}
