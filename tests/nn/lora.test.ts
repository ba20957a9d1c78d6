// LoRA against PyTorch: tests/fixtures/make_finetune.py wrote a PEFT-layout adapter (q_proj, v_proj,
// r 4, alpha 8, dropout 0.1 in its config) for the tiny BF16 Qwen2 model (tied head, q/k/v biases)
// with float64 reference logits (base alone and base + adapter), the masked SFT loss, its LoRA
// gradients and 5 AdamW steps with global-norm clipping. kiln must load the adapter, match logits
// within 1e-5, loss within 1e-5, gradients within 1e-4 relative, leave the frozen base without
// gradients, merge into weights that give the same logits, and save adapters PEFT's way.

import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { readSafetensors, writeSafetensors } from "../../src/io/safetensors.ts";
import { loadPretrained, type PretrainedModel } from "../../src/models/index.ts";
import { fromArray, randn, type Tensor } from "../../src/tensor/tensor.ts";
import { scope } from "../../src/tensor/memory.ts";
import { noGrad } from "../../src/autograd/tape.ts";
import * as ops from "../../src/ops/index.ts";
import { Linear } from "../../src/nn/layers.ts";
import { LoRALinear } from "../../src/nn/lora.ts";
import { cloneLayer } from "../../src/nn/modules_to_save.ts";
import { AdamW } from "../../src/optim/adamw.ts";
import { gradNormSq } from "../../src/optim/clip.ts";
import { adapterParameters, applyLora, disableAdapters, setAdapter, formatParameterCounts, loraLayers, matchTargets, mergeAndUnload, parameterCounts } from "../../src/nn/lora_model.ts";
import { loadAdapter, saveAdapter } from "../../src/io/peft.ts";
import { maskedCrossEntropy, shiftLabels } from "../../src/train/losses.ts";
import { backendNames, getBackend } from "../backends.ts";

const FIX = join(import.meta.dir, "..", "fixtures");
const SFT = join(FIX, "finetune", "sft");
const tmp = await mkdtemp(join(tmpdir(), "kiln-lora-"));
afterAll(() => rm(tmp, { recursive: true, force: true }));

const ref = await readSafetensors(join(SFT, "reference.safetensors"));
const info = JSON.parse(await readFile(join(SFT, "reference.json"), "utf8"));
const ids = (await ref.read("input_ids")) as Int32Array;
const labels = (await ref.read("labels")) as Int32Array;
const [B, T] = ref.info("input_ids").shape;

function maxRelErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < want.length; i++) {
    num = Math.max(num, Math.abs(got[i] - want[i]));
    den = Math.max(den, Math.abs(want[i]));
  }
  return num / Math.max(den, 1e-30);
}
function maxAbsErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let e = 0;
  for (let i = 0; i < want.length; i++) e = Math.max(e, Math.abs(got[i] - want[i]));
  return e;
}

describe.each(backendNames)("LoRA on %s", (name) => {
  async function setup(): Promise<{ model: PretrainedModel; x: Tensor; y: Tensor }> {
    const backend = await getBackend(name);
    const { model } = await loadPretrained(join(FIX, "hf", "qwen2"), { backend });
    await loadAdapter(model, join(SFT, "adapter"), { isTrainable: true });
    const x = fromArray(ids, [B, T], { dtype: "i32", backend });
    const y = fromArray(shiftLabels(labels, B, T), [B, T], { dtype: "i32", backend });
    return { model, x, y };
  }
  const logitsOf = async (model: PretrainedModel, x: Tensor) => {
    const out = scope(() => noGrad(() => model.forward(x)));
    const data = (await out.data()) as Float32Array;
    out.dispose();
    return data;
  };

  test("a PEFT adapter loads: base + adapter logits, and the base exactly with adapters disabled", async () => {
    const { model, x, y } = await setup();
    expect(loraLayers(model).map(([p]) => p)).toEqual([
      "model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
      "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj",
    ]);
    expect(maxAbsErr(await logitsOf(model, x), await ref.readFloat64("logits"))).toBeLessThan(1e-5);
    const base = await disableAdapters(model, () => logitsOf(model, x));
    expect(maxAbsErr(base, await ref.readFloat64("logits_base"))).toBeLessThan(1e-5);
    // and the adapter is back on afterwards
    expect(maxAbsErr(await logitsOf(model, x), await ref.readFloat64("logits"))).toBeLessThan(1e-5);
    model.dispose();
    x.dispose();
    y.dispose();
  });

  test("masked SFT loss and LoRA gradients match PyTorch; the frozen base gets no gradient", async () => {
    const { model, x, y } = await setup();
    model.eval(); // dropout off, as the reference
    const loss = maskedCrossEntropy(model.forward(x), y);
    expect(Math.abs((await loss.item()) - info.loss)).toBeLessThan(1e-5);
    loss.backward();
    loss.dispose();
    const params = adapterParameters(model);
    expect(params.length).toBe(8);
    for (const [path, p] of params) {
      const m = path.match(/^(.+)\.lora_([AB])\.default\.weight$/)!;
      const want = await ref.readFloat64(`grad.${m[1]}.lora_${m[2]}`);
      expect(maxRelErr((await p.grad!.data()) as Float32Array, want)).toBeLessThan(1e-4);
    }
    for (const [n, p] of model.namedParameters()) if (!n.includes(".lora_")) expect(p.grad).toBeNull();
    expect(parameterCounts(model).trainable).toBe(params.reduce((s, [, p]) => s + p.size, 0));
    expect(formatParameterCounts(model)).toMatch(/^trainable params: 1,792 \|\| all params: [\d,]+ \|\| trainable%: /);
    model.dispose();
    x.dispose();
    y.dispose();
  });

  test("5 AdamW steps with clipping follow PyTorch (losses and adapter weights)", async () => {
    const { model, x, y } = await setup();
    model.eval();
    const params = adapterParameters(model);
    const { lr, betas, eps, weight_decay } = info.adamw;
    const opt = new AdamW(params.map(([, p]) => p), { lr, betas, eps, weightDecay: weight_decay });
    const losses: number[] = [];
    for (let s = 0; s < 5; s++) {
      const l = scope(() => {
        const loss = maskedCrossEntropy(model.forward(x), y);
        loss.backward();
        opt.step({ gradNormSq: gradNormSq(opt.params), maxNorm: info.max_grad_norm });
        opt.zeroGrad();
        return loss.detach();
      });
      losses.push(await l.item());
      l.dispose();
    }
    for (let s = 0; s < 5; s++) expect(Math.abs(losses[s] - info.step_losses[s])).toBeLessThan(1e-4);
    for (const [path, p] of params) {
      const m = path.match(/^(.+)\.lora_([AB])\.default\.weight$/)!;
      expect(maxRelErr((await p.data()) as Float32Array, await ref.readFloat64(`after.${m[1]}.lora_${m[2]}`))).toBeLessThan(1e-4);
    }
    model.dispose();
    x.dispose();
    y.dispose();
  });

  test("mergeAndUnload gives the adapter's logits with plain Linear layers; the saved merged model reloads the same", async () => {
    const { model, x, y } = await setup();
    const want = await ref.readFloat64("logits");
    const diff = await mergeAndUnload(model);
    expect(diff).toBeLessThan(1e-5);
    expect(loraLayers(model)).toHaveLength(0);
    expect(model.namedParameters().some(([n]) => n.includes("lora_"))).toBe(false);
    expect(maxAbsErr(await logitsOf(model, x), want)).toBeLessThan(1e-5);
    const dir = join(tmp, `merged-${name}`);
    await model.savePretrained(dir);
    const { model: again } = await loadPretrained(dir, { backend: await getBackend(name) });
    expect(maxAbsErr(await logitsOf(again, x), want)).toBeLessThan(1e-5);
    again.dispose();
    model.dispose();
    x.dispose();
    y.dispose();
  });

  test("saveAdapter writes PEFT's key names and config; it loads back to the same logits", async () => {
    const { model, x, y } = await setup();
    const dir = join(tmp, `adapter-${name}`);
    await saveAdapter(model, dir, { baseModelNameOrPath: "tests/fixtures/hf/qwen2" });
    const mine = await readSafetensors(join(dir, "adapter_model.safetensors"));
    const theirs = await readSafetensors(join(SFT, "adapter", "adapter_model.safetensors"));
    expect(mine.names().sort()).toEqual(theirs.names().sort());
    expect(mine.names()).toContain("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
    for (const n of theirs.names()) expect(mine.info(n).shape).toEqual(theirs.info(n).shape);
    const config = JSON.parse(await readFile(join(dir, "adapter_config.json"), "utf8"));
    expect(config).toMatchObject({ peft_type: "LORA", task_type: "CAUSAL_LM", r: 4, lora_alpha: 8, lora_dropout: 0.1, bias: "none", fan_in_fan_out: false, use_rslora: false, target_modules: ["q_proj", "v_proj"] });
    const { model: fresh } = await loadPretrained(join(FIX, "hf", "qwen2"), { backend: await getBackend(name) });
    await loadAdapter(fresh, dir);
    expect(maxAbsErr(await logitsOf(fresh, x), await ref.readFloat64("logits"))).toBeLessThan(1e-5);
    expect(fresh.trainableParameters()).toHaveLength(0); // inference by default, as PeftModel.from_pretrained
    fresh.dispose();
    model.dispose();
    x.dispose();
    y.dispose();
  });
});

describe("LoRALinear", () => {
  test("PEFT's init: B = 0 (the layer starts as its base), A within ±1/√in; dropout only on the adapter's input", async () => {
    const backend = await getBackend("wasm");
    const base = new Linear(32, 16, { backend, bias: true });
    const x = randn([3, 32], { backend });
    const want = (await base.forward(x).data()) as Float32Array;
    const lora = LoRALinear.fromBase(base, { r: 4, alpha: 16, dropout: 0.5 });
    lora.train();
    expect(maxAbsErr((await lora.forward(x).data()) as Float32Array, want)).toBe(0);
    const A = (await lora.adapterWeights("default").A.data()) as Float32Array;
    expect(Math.max(...A.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(32));
    expect(Math.max(...A.map(Math.abs))).toBeGreaterThan(0.5 / Math.sqrt(32));
    expect(lora.adapters.get("default")!.scale).toBe(4);
    lora.dispose();
    x.dispose();
  });

  test("use_rslora scales by alpha/√r; a merge and unmerge restore the weight; fan_in_fan_out merges transposed", async () => {
    const backend = await getBackend("wasm");
    for (const layout of ["out_in", "in_out"] as const) {
      const base = new Linear(8, 6, { backend, layout });
      const w0 = Float32Array.from((await base.weight.data()) as Float32Array);
      const lora = LoRALinear.fromBase(base, { r: 4, alpha: 8, useRslora: true });
      expect(lora.adapters.get("default")!.scale).toBe(4);
      const { B } = lora.adapterWeights("default");
      B.backend.upload(B.storage.buffer, Float32Array.from({ length: B.size }, (_, i) => Math.sin(i)));
      const x = randn([2, 8], { backend });
      const withAdapter = (await lora.forward(x).data()) as Float32Array;
      lora.merge();
      expect(maxAbsErr((await lora.forward(x).data()) as Float32Array, withAdapter)).toBeLessThan(1e-5);
      expect(maxAbsErr((await base.forward(x).data()) as Float32Array, withAdapter)).toBeLessThan(1e-5);
      lora.unmerge();
      expect(maxAbsErr((await base.weight.data()) as Float32Array, w0)).toBeLessThan(1e-6);
      lora.dispose();
      x.dispose();
    }
  });

  test("target_modules: names by suffix, a regex over the whole path, all-linear without lm_head; no match is an error naming the layers", async () => {
    const backend = await getBackend("wasm");
    const { model } = await loadPretrained(join(FIX, "hf", "llama"), { backend });
    expect(matchTargets(model, ["q_proj", "v_proj"])).toHaveLength(4);
    expect(matchTargets(model, String.raw`model\.layers\.1\..*_proj`)).toHaveLength(7);
    const all = matchTargets(model, "all-linear");
    expect(all).toHaveLength(14);
    expect(all).not.toContain("lm_head");
    expect(() => applyLora(model, { r: 2, loraAlpha: 4, targetModules: ["query"] })).toThrow(/matched no Linear layer; the model's are: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, lm_head/);
    applyLora(model, { r: 2, loraAlpha: 4, targetModules: "all-linear" });
    expect(loraLayers(model)).toHaveLength(14);
    expect(model.trainableParameters().length).toBe(28);
    model.dispose();
  });
});

describe("LoRA on GPT-2's Conv1D layers (fan_in_fan_out)", () => {
  test("c_attn/c_fc adapters: merged logits equal the adapter's; the PEFT folder says fan_in_fan_out and loads back", async () => {
    const backend = await getBackend("wasm");
    const { model } = await loadPretrained(join(FIX, "hf", "gpt2"), { backend });
    applyLora(model, { r: 4, loraAlpha: 8, targetModules: ["c_attn", "c_fc"] });
    for (const [, l] of loraLayers(model)) {
      expect(l.fanInFanOut).toBe(true);
      const { B: Bw, A } = l.adapterWeights("default");
      expect(A.shape).toEqual([4, l.inFeatures]);
      Bw.backend.upload(Bw.storage.buffer, Float32Array.from({ length: Bw.size }, (_, i) => 0.05 * Math.sin(i + 1)));
    }
    const x = fromArray(Int32Array.from([5, 17, 42, 7, 99, 3]), [1, 6], { dtype: "i32", backend });
    const logits = async (m: PretrainedModel) => {
      const out = scope(() => noGrad(() => m.forward(x)));
      const d = (await out.data()) as Float32Array;
      out.dispose();
      return d;
    };
    const want = await logits(model);
    const base = await disableAdapters(model, () => logits(model));
    expect(maxAbsErr(base, want)).toBeGreaterThan(1e-3); // the adapter changes the output
    const dir = join(tmp, "gpt2-adapter");
    await saveAdapter(model, dir);
    const config = JSON.parse(await readFile(join(dir, "adapter_config.json"), "utf8"));
    expect(config.fan_in_fan_out).toBe(true);
    expect(config.target_modules).toEqual(["c_attn", "c_fc"]);
    const { model: fresh } = await loadPretrained(join(FIX, "hf", "gpt2"), { backend });
    await loadAdapter(fresh, dir);
    expect(maxAbsErr(await logits(fresh), want)).toBeLessThan(1e-6);
    expect(await mergeAndUnload(model)).toBeLessThan(1e-5);
    expect(maxAbsErr(await logits(model), want)).toBeLessThan(1e-5);
    fresh.dispose();
    model.dispose();
    x.dispose();
  });

  test("a PEFT folder whose fan_in_fan_out disagrees with the layers, or with DoRA, is refused naming the field", async () => {
    const backend = await getBackend("wasm");
    const { model } = await loadPretrained(join(FIX, "hf", "qwen2"), { backend });
    const dir = join(tmp, "bad-adapter");
    await saveAdapter((await (async () => { await loadAdapter(model, join(SFT, "adapter")); return model; })()), dir);
    const cfgPath = join(dir, "adapter_config.json");
    const cfg = JSON.parse(await readFile(cfgPath, "utf8"));
    const { model: fresh } = await loadPretrained(join(FIX, "hf", "qwen2"), { backend });
    await Bun.write(cfgPath, JSON.stringify({ ...cfg, fan_in_fan_out: true }));
    await expect(loadAdapter(fresh, dir)).rejects.toThrow(/fan_in_fan_out is true but model.layers.0.self_attn.q_proj stores its weight \[out, in\]/);
    expect(loraLayers(fresh)).toHaveLength(0); // refused before any layer was wrapped
    await Bun.write(cfgPath, JSON.stringify({ ...cfg, use_dora: true }));
    await expect(loadAdapter(fresh, dir)).rejects.toThrow(/adapter_config.json: use_dora is not supported/);
    await Bun.write(cfgPath, JSON.stringify({ ...cfg, peft_type: "IA3" }));
    await expect(loadAdapter(fresh, dir)).rejects.toThrow(/peft_type must be "LORA"/);
    fresh.dispose();
    model.dispose();
  });
});

describe("modules_to_save", () => {
  const x = async (backend: Awaited<ReturnType<typeof getBackend>>) => fromArray(Int32Array.from([1, 2, 3, 4]), [1, 4], { dtype: "i32", backend });
  const logitsOf = async (m: PretrainedModel, ids: Tensor) => {
    const out = scope(() => noGrad(() => m.forward(ids)));
    const d = (await out.data()) as Float32Array;
    out.dispose();
    return d;
  };
  /** Moves every trainable tensor, as training would. */
  const perturb = async (m: PretrainedModel, k: number) => {
    for (const t of m.trainableParameters()) t.backend.upload(t.storage.buffer, ((await t.data()) as Float32Array).map((v, i) => v + 0.05 * Math.sin(i * 0.37 + k)));
  };

  test("as PEFT's ModulesToSaveWrapper: the original module is kept, a copy trains; disableAdapters gives the base logits exactly", async () => {
    const backend = await getBackend("wasm");
    const { model } = await loadPretrained(join(FIX, "hf", "llama"), { backend }); // untied lm_head
    const ids = await x(backend);
    const base = await logitsOf(model, ids);
    const baseHead = (await model.stateDict().get("lm_head.weight")!.data()) as Float32Array;
    applyLora(model, { r: 2, loraAlpha: 4, targetModules: ["q_proj"], modulesToSave: ["lm_head"] });
    const sd = model.stateDict();
    expect([...sd.keys()].filter((k) => k.startsWith("lm_head."))).toEqual(["lm_head.original_module.weight", "lm_head.modules_to_save.default.weight"]);
    expect(sd.get("lm_head.original_module.weight")!.requiresGrad).toBe(false);
    expect(sd.get("lm_head.modules_to_save.default.weight")!.requiresGrad).toBe(true);
    expect(sd.get("model.embed_tokens.weight")!.requiresGrad).toBe(false);
    await perturb(model, 1);
    const adapted = await logitsOf(model, ids);
    expect(maxAbsErr(adapted, base)).toBeGreaterThan(1e-3);
    expect(await sd.get("lm_head.original_module.weight")!.data()).toEqual(baseHead); // untouched
    expect(disableAdapters(model, () => 0)).toBe(0);
    const disabled = await disableAdapters(model, () => logitsOf(model, ids));
    expect(disabled).toEqual(base); // exactly
    expect(await logitsOf(model, ids)).toEqual(adapted); // back on after

    // a second adapter without modules_to_save runs the original head (PEFT: its wrappers are off)
    applyLora(model, { r: 2, loraAlpha: 4, targetModules: ["q_proj"], adapterName: "other" });
    setAdapter(model, "other");
    expect(model.stateDict().get("lm_head.modules_to_save.default.weight")!.requiresGrad).toBe(false);
    expect(await logitsOf(model, ids)).toEqual(base); // "other"'s B is zero: base q_proj, original head
    setAdapter(model, "default");
    expect(await logitsOf(model, ids)).toEqual(adapted);

    // the chunked LM-head loss still applies (the running head is a plain Linear) and equals the full-logits loss
    const targets = fromArray(Int32Array.from([2, 3, 4, 5]), [1, 4], { dtype: "i32", backend });
    expect(model.outputHead!.weight).toBe(sd.get("lm_head.modules_to_save.default.weight")!);
    const chunked = scope(() => noGrad(() => model.loss(ids, targets)));
    const full = scope(() => noGrad(() => ops.crossEntropy(model.forward(ids), targets)));
    expect(Math.abs((await chunked.item()) - (await full.item()))).toBeLessThan(1e-5);
    expect(await disableAdapters(model, () => model.outputHead!.weight)).toBe(sd.get("lm_head.original_module.weight")!);
    for (const t of [chunked, full, targets]) t.dispose();

    // mergeAndUnload keeps the active adapter's copy as the module
    await mergeAndUnload(model);
    expect([...model.stateDict().keys()].filter((k) => k.startsWith("lm_head."))).toEqual(["lm_head.weight"]);
    expect(maxAbsErr(await logitsOf(model, ids), adapted)).toBeLessThan(1e-5);
    ids.dispose();
    model.dispose();
  });

  test("saved under the module's own names (PEFT's layout), loaded back into a copy; PEFT's in-memory key names load too", async () => {
    const backend = await getBackend("wasm");
    const { model } = await loadPretrained(join(FIX, "hf", "llama"), { backend });
    const ids = await x(backend);
    const base = await logitsOf(model, ids);
    applyLora(model, { r: 2, loraAlpha: 4, targetModules: ["q_proj"], modulesToSave: ["lm_head"] });
    await perturb(model, 2);
    const want = await logitsOf(model, ids);
    const dir = join(tmp, "mts-adapter");
    await saveAdapter(model, dir);
    const file = await readSafetensors(join(dir, "adapter_model.safetensors"));
    expect(file.names().filter((n) => n.includes("lm_head"))).toEqual(["base_model.model.lm_head.weight"]);
    expect(maxAbsErr((await file.read("base_model.model.lm_head.weight")) as Float32Array, (await model.stateDict().get("lm_head.modules_to_save.default.weight")!.data()) as Float32Array)).toBe(0);
    expect(JSON.parse(await readFile(join(dir, "adapter_config.json"), "utf8")).modules_to_save).toEqual(["lm_head"]);

    for (const isTrainable of [true, false]) {
      const { model: fresh } = await loadPretrained(join(FIX, "hf", "llama"), { backend });
      await loadAdapter(fresh, dir, { isTrainable });
      expect(maxAbsErr(await logitsOf(fresh, ids), want)).toBeLessThan(1e-6);
      expect(fresh.stateDict().get("lm_head.modules_to_save.default.weight")!.requiresGrad).toBe(isTrainable);
      expect(await disableAdapters(fresh, () => logitsOf(fresh, ids))).toEqual(base);
      fresh.dispose();
    }

    // the key as a PeftModel's state_dict names it (modules_to_save.<adapter> kept) is read as the same tensor
    const renamed = join(tmp, "mts-peft-keys");
    const tensors: Record<string, { dtype: "F32"; shape: readonly number[]; data: () => Promise<Float32Array> }> = {};
    for (const n of file.names()) tensors[n === "base_model.model.lm_head.weight" ? "base_model.model.lm_head.modules_to_save.default.weight" : n] = { dtype: "F32", shape: file.info(n).shape, data: async () => (await file.read(n)) as Float32Array };
    await mkdir(renamed, { recursive: true });
    await writeSafetensors(join(renamed, "adapter_model.safetensors"), tensors);
    await Bun.write(join(renamed, "adapter_config.json"), await readFile(join(dir, "adapter_config.json"), "utf8"));
    const { model: fresh } = await loadPretrained(join(FIX, "hf", "llama"), { backend });
    await loadAdapter(fresh, renamed);
    expect(maxAbsErr(await logitsOf(fresh, ids), want)).toBeLessThan(1e-6);
    fresh.dispose();
    ids.dispose();
    model.dispose();
  });
});

describe.each(backendNames)("modules_to_save from a PEFT-layout fixture on %s", (name) => {
  test("tests/fixtures/finetune/modules_to_save (plain PyTorch): base + adapter + saved head logits within 1e-5; disabled: the base's", async () => {
    const backend = await getBackend(name);
    const dir = join(FIX, "finetune", "modules_to_save");
    const mref = await readSafetensors(join(dir, "reference.safetensors"));
    const { model } = await loadPretrained(join(FIX, "hf", "llama"), { backend });
    await loadAdapter(model, join(dir, "adapter"));
    expect(model.stateDict().has("lm_head.modules_to_save.default.weight")).toBe(true);
    const ids = fromArray((await mref.read("input_ids")) as Int32Array, mref.info("input_ids").shape, { dtype: "i32", backend });
    const run = async () => {
      const out = scope(() => noGrad(() => model.forward(ids)));
      const d = (await out.data()) as Float32Array;
      out.dispose();
      return d;
    };
    expect(maxAbsErr(await run(), await mref.readFloat64("logits"))).toBeLessThan(1e-5);
    expect(maxAbsErr(await disableAdapters(model, run), await mref.readFloat64("base_logits"))).toBeLessThan(1e-5);
    ids.dispose();
    model.dispose();
  });
});

describe("modules_to_save over a 16-bit frozen module", () => {
  test("the trained copy is float32, holding the 16-bit values widened", async () => {
    const backend = await getBackend("wasm");
    const values = Float32Array.from({ length: 12 }, (_, i) => 0.1 + i / 7);
    class HalfLinear extends Linear {
      constructor() {
        super(4, 3, { bias: false, backend });
        this.param("weight", fromArray(values, [3, 4], { dtype: "bf16", backend }), false); // as a 16-bit base loads it
      }
    }
    const copy = cloneLayer(new HalfLinear());
    const w = copy.stateDict().get("weight")!;
    expect([w.dtype, w.requiresGrad]).toEqual(["f32", true]);
    const bf16 = (v: number) => new Float32Array(new Uint32Array([new Uint32Array(new Float32Array([v]).buffer)[0] + 0x7fff + ((new Uint32Array(new Float32Array([v]).buffer)[0] >> 16) & 1) & 0xffff0000]).buffer)[0];
    expect(Array.from((await w.data()) as Float32Array)).toEqual(Array.from(values, bf16));
  });
});
