// The DPO losses against PyTorch: tests/fixtures/make_finetune.py computed TRL's dpo_loss (sigmoid,
// label-smoothed sigmoid, hinge, ipo on per-token averaged logps) for two preference pairs on the
// tiny F16 Llama (untied head) with a LoRA adapter as the policy and the base (adapters disabled)
// as the reference, plus the sigmoid loss's LoRA gradients and TRL's reward metrics.

import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { readFile } from "node:fs/promises";
import { readSafetensors } from "../../src/io/safetensors.ts";
import { loadPretrained } from "../../src/models/index.ts";
import { fromArray, tensor } from "../../src/tensor/tensor.ts";
import { noGrad } from "../../src/autograd/tape.ts";
import * as ops from "../../src/ops/index.ts";
import { adapterParameters, disableAdapters } from "../../src/nn/lora_model.ts";
import { loadAdapter } from "../../src/io/peft.ts";
import { dpoLoss, dpoMetrics, logSigmoid, sequenceLogps, shiftLabels } from "../../src/train/losses.ts";
import { backendNames, getBackend } from "../backends.ts";

const DPO = join(import.meta.dir, "..", "fixtures", "finetune", "dpo");
const ref = await readSafetensors(join(DPO, "reference.safetensors"));
const info = JSON.parse(await readFile(join(DPO, "reference.json"), "utf8"));
const ids = (await ref.read("input_ids")) as Int32Array;
const labels = (await ref.read("labels")) as Int32Array;
const [N, T] = ref.info("input_ids").shape;

function maxRelErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < want.length; i++) {
    num = Math.max(num, Math.abs(got[i] - want[i]));
    den = Math.max(den, Math.abs(want[i]));
  }
  return num / den;
}

describe.each(backendNames)("DPO losses on %s", (name) => {
  test("sigmoid / label-smoothed / hinge / ipo losses, LoRA gradients and reward metrics match TRL's formulas", async () => {
    const backend = await getBackend(name);
    const { model } = await loadPretrained(join(import.meta.dir, "..", "fixtures", "hf", "llama"), { backend });
    await loadAdapter(model, join(DPO, "adapter"), { isTrainable: true });
    const x = fromArray(ids, [N, T], { dtype: "i32", backend });
    const targets = shiftLabels(labels, N, T);
    const y = fromArray(targets, [N, T], { dtype: "i32", backend });
    const refLogps = disableAdapters(model, () => noGrad(() => sequenceLogps(model.forward(x), y)));
    expect(maxRelErr((await refLogps.data()) as Float32Array, await ref.readFloat64("ref_logps"))).toBeLessThan(1e-5);
    const pol = sequenceLogps(model.forward(x), y);
    expect(maxRelErr((await pol.data()) as Float32Array, await ref.readFloat64("policy_logps"))).toBeLessThan(1e-5);
    const half = (t: typeof pol, i: number) => t.narrow(0, i * (N / 2), N / 2);
    const logps = { policyChosen: half(pol, 0), policyRejected: half(pol, 1), refChosen: half(refLogps, 0), refRejected: half(refLogps, 1) };
    const out = dpoLoss(logps, { beta: info.beta });
    expect(Math.abs((await out.loss.item()) - info.losses.sigmoid)).toBeLessThan(1e-5);
    const metrics = await dpoMetrics(out, logps);
    for (const [k, v] of Object.entries(info.metrics)) expect(Math.abs(metrics[k] - (v as number))).toBeLessThan(1e-4);
    const smoothed = noGrad(() => dpoLoss(logps, { beta: info.beta, labelSmoothing: info.label_smoothing }).loss);
    expect(Math.abs((await smoothed.item()) - info.losses.sigmoid_label_smoothing)).toBeLessThan(1e-5);
    const hinge = noGrad(() => dpoLoss(logps, { beta: info.beta, lossType: "hinge" }).loss);
    expect(Math.abs((await hinge.item()) - info.losses.hinge)).toBeLessThan(1e-5);
    // ipo on logps averaged over each completion's tokens
    const counts = new Float32Array(N);
    for (let i = 0; i < N * T; i++) if (targets[i] !== -100) counts[Math.floor(i / T)]++;
    const per = tensor(Array.from(counts), [N], { backend });
    const avg = (t: typeof pol) => noGrad(() => ops.div(t, per));
    const ipo = noGrad(() => dpoLoss({ policyChosen: half(avg(pol), 0), policyRejected: half(avg(pol), 1), refChosen: half(avg(refLogps), 0), refRejected: half(avg(refLogps), 1) }, { beta: info.beta, lossType: "ipo" }).loss);
    expect(Math.abs((await ipo.item()) - info.losses.ipo) / info.losses.ipo).toBeLessThan(1e-5);

    out.loss.backward();
    for (const [path, p] of adapterParameters(model)) {
      const m = path.match(/^(.+)\.lora_([AB])\.default\.weight$/)!;
      expect(maxRelErr((await p.grad!.data()) as Float32Array, await ref.readFloat64(`grad.${m[1]}.lora_${m[2]}`))).toBeLessThan(1e-4);
    }
    for (const [n, p] of model.namedParameters()) if (!n.includes(".lora_")) expect(p.grad).toBeNull();
    model.dispose();
  });

  test("logSigmoid's gradient is σ(−x), at 0 too (where DPO starts)", async () => {
    const backend = await getBackend(name);
    const xs = [-3, -0.5, 0, 0.5, 3];
    const x = tensor(xs, [xs.length], { backend, requiresGrad: true });
    logSigmoid(x).sum().backward();
    const g = (await x.grad!.data()) as Float32Array;
    xs.forEach((v, i) => expect(Math.abs(g[i] - 1 / (1 + Math.exp(v)))).toBeLessThan(1e-6));
    x.dispose();
  });

  test("logSigmoid is finite and exact far into both tails", async () => {
    const backend = await getBackend(name);
    const xs = [-200, -30, -1, 0, 1, 30, 200];
    const got = (await noGrad(() => logSigmoid(tensor(xs, [xs.length], { backend }))).data()) as Float32Array;
    xs.forEach((v, i) => {
      const want = v < 0 ? v - Math.log1p(Math.exp(v)) : -Math.log1p(Math.exp(-v));
      expect(Math.abs(got[i] - want)).toBeLessThan(1e-5 * Math.max(1, Math.abs(want)));
    });
  });

  test("bad options are errors naming the option", async () => {
    const backend = await getBackend(name);
    const z = tensor([0, 0], [2], { backend });
    const l = { policyChosen: z, policyRejected: z, refChosen: z, refRejected: z };
    expect(() => dpoLoss(l, { beta: 0 })).toThrow(/beta must be > 0/);
    expect(() => dpoLoss(l, { beta: 0.1, labelSmoothing: 0.1, lossType: "ipo" })).toThrow(/label_smoothing applies to the sigmoid loss only/);
    expect(() => dpoLoss(l, { beta: 0.1, lossType: "kto" as "ipo" })).toThrow(/unknown loss_type "kto"/);
    z.dispose();
  });
});
