// SGD against torch.optim.SGD (tests/fixtures/make_trainer_ref.py): 5 steps of a two-layer MLP
// with momentum, nesterov, dampening, weight decay and a per-group lr, on every backend; the
// optimizer protocol: state only for owned parameters that had a gradient, stateDict round trip.

import { describe, expect, test } from "bun:test";
import { SGD } from "../../src/optim/sgd.ts";
import { AdamW } from "../../src/optim/adamw.ts";
import { useBackend } from "../../src/tensor/tensor.ts";
import { scope } from "../../src/tensor/memory.ts";
import { backendNames, getBackend } from "../backends.ts";
import { Mlp, REF, expectParams, rows } from "./mlp_fixture.ts";

describe.each(backendNames)("SGD on %s", (name) => {
  for (const c of (REF.sgd as { options: Record<string, number | boolean>; losses: number[]; final: Record<string, number[]> }[])) {
    test(`5 steps match torch.optim.SGD (${JSON.stringify(c.options)}, two groups lr 0.1 / 0.05)`, async () => {
      const backend = await getBackend(name);
      useBackend(backend);
      const model = new Mlp(backend);
      const o = c.options;
      const opt = new SGD(
        [{ params: [model.fc1.weight, model.fc2.weight] }, { params: [model.fc1.bias!, model.fc2.bias!], lr: 0.05 }],
        { lr: 0.1, momentum: o.momentum as number | undefined, dampening: o.dampening as number | undefined, nesterov: o.nesterov as boolean | undefined, weightDecay: o.weight_decay as number | undefined },
      );
      const { x, y } = rows(0, 4, "train", backend);
      const losses: number[] = [];
      for (let s = 0; s < 5; s++) {
        const loss = scope(() => {
          const l = model.loss(x, y);
          l.backward();
          opt.step();
          opt.zeroGrad();
          return l;
        });
        losses.push(await loss.item());
        loss.dispose();
      }
      expect(losses).toBeAllClose(c.losses, { atol: 1e-5, rtol: 0 });
      await expectParams(model, c.final, 2e-6);
      x.dispose(); y.dispose(); opt.dispose(); model.dispose();
    });
  }
});

describe("optimizer protocol", () => {
  test("state exists only for owned parameters that had a gradient; frozen ones cost nothing", async () => {
    useBackend(await getBackend("wasm"));
    const model = new Mlp();
    model.fc1.weight.requiresGrad = false; // a frozen base weight
    model.fc1.bias!.requiresGrad = false;
    const opt = new AdamW(model.parameters().filter((p) => p.requiresGrad), { lr: 1e-2 });
    expect(opt.owns(model.fc1.weight)).toBe(false);
    const { x, y } = rows(0, 4);
    scope(() => { model.loss(x, y).backward(); opt.step(); opt.zeroGrad(); });
    expect(opt.stateOf(model.fc1.weight)).toBeUndefined();
    expect(Object.keys(opt.stateOf(model.fc2.weight)!)).toEqual(["m", "v"]);
    expect(opt.stateDict().state.size).toBe(2);
    x.dispose(); y.dispose(); opt.dispose(); model.dispose();
  });

  test("stateDict / loadStateDict continue a trajectory exactly (SGD momentum)", async () => {
    useBackend(await getBackend("wasm"));
    const c = REF.sgd[0];
    const run = (model: Mlp, opt: SGD, steps: number) => {
      const { x, y } = rows(0, 4);
      for (let s = 0; s < steps; s++) scope(() => { model.loss(x, y).backward(); opt.step(); opt.zeroGrad(); });
      x.dispose(); y.dispose();
    };
    const groups = (m: Mlp) => [{ params: [m.fc1.weight, m.fc2.weight] }, { params: [m.fc1.bias!, m.fc2.bias!], lr: 0.05 }];
    const a = new Mlp();
    const optA = new SGD(groups(a), { lr: 0.1, momentum: 0.9 });
    run(a, optA, 3);
    // a second model + optimizer takes over a's weights and optimizer state
    const b = new Mlp();
    b.loadStateDict(new Map(await Promise.all(a.namedParameters().map(async ([n, t]) => [n, { shape: t.shape, data: (await t.data()) as Float32Array }] as const))));
    const optB = new SGD(groups(b), { lr: 0.1, momentum: 0.9 });
    const sd = optA.stateDict();
    const byName = new Map(a.namedParameters().map(([n, t]) => [t, n]));
    const bParams = new Map(b.namedParameters());
    optB.loadStateDict({ ...sd, state: new Map([...sd.state].map(([p, s]) => [bParams.get(byName.get(p)!)!, s])) });
    expect(optB.stepCount).toBe(3);
    expect(optB.groupLr(1)).toBeCloseTo(0.05, 12);
    run(b, optB, 2);
    await expectParams(b, c.final, 2e-6);
    // a state dict of another optimizer type is refused
    expect(() => new AdamW(b.parameters()).loadStateDict(sd)).toThrow(/is for "sgd", not "adamw"/);
    for (const o of [optA, optB]) o.dispose();
    a.dispose(); b.dispose();
  });
});
