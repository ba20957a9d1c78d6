// Direct Preference Optimization with LoRA, as TRL's DPOTrainer on a PEFT model. The reference is
// the model as it stands when DPO starts (after SFT: the SFT model), never a second copy of the
// base weights: the policy trains the current adapter, the reference is the same base with a
// frozen copy of that adapter (adapters are small) — or with adapters disabled when there was
// none — or log-probs computed in one pass before training (precompute_ref_log_probs). An
// explicit refModel overrides. Chosen and rejected rows go through one forward together (TRL's
// concatenated_forward). Metrics as TRL logs them: rewards/chosen, rewards/rejected,
// rewards/accuracies, rewards/margins, logps/chosen, logps/rejected.

import type { Rng } from "../tensor/random.ts";
import { withBackend, type Tensor } from "../tensor/tensor.ts";
import { noGrad } from "../autograd/tape.ts";
import { scope, keep } from "../tensor/memory.ts";
import * as ops from "../ops/index.ts";
import type { Split } from "../data/dataset.ts";
import type { BatchSource, LossOutput } from "../train/trainer.ts";
import { causalLmLogps, dpoLoss, type DpoLogps } from "../train/losses.ts";
import { adapterParameters, deleteAdapter, disableAdapters, loraLayers } from "../nn/lora_model.ts";
import type { LoRALinear } from "../nn/lora.ts";
import { copyInto } from "../nn/lora.ts";
import { ModulesToSaveWrapper, savedModuleWrappers } from "../nn/modules_to_save.ts";
import { parseDpoConfig, type DpoConfig } from "./config.ts";
import { formatPreferences, loadRows, type PreferenceExample } from "./data.ts";
import { collatePreferences, EpochSampler, type PreferenceBatch } from "./batches.ts";
import type { ModelInterface } from "./model.ts";
import { adapterOptimizer, engineArgs, ownAdapter, runEngine, type FinetuneResult } from "./run.ts";
import { failed, type SftData, type TrainCallOptions } from "./sft.ts";

const REFERENCE = "reference";

export class DpoTrainer {
  readonly config: DpoConfig;
  readonly adapterName: string;
  /** how reference log-probs are computed */
  readonly referenceKind: "ref_model" | "adapter_copy" | "adapters_disabled";
  readonly #model: ModelInterface;
  readonly #refModel?: ModelInterface;

  constructor(model: ModelInterface, config: Record<string, unknown> = {}, refModel?: ModelInterface) {
    this.config = parseDpoConfig(config);
    if (!model.tokenizer) throw new Error(`[dpo] the model${model.path ? ` at ${model.path}` : ""} has no tokenizer (tokenizer.json)`);
    if (refModel && refModel.backend !== model.backend) {
      throw new Error(`[dpo] the reference model lives on backend "${refModel.backendName}" and the policy on "${model.backendName}": load both through the same backend`);
    }
    this.#model = model;
    this.#refModel = refModel;
    const hadAdapter = loraLayers(model.module).some(([, l]) => l.activeAdapter !== null);
    this.adapterName = ownAdapter(model, this.config, (s) => this.config.progress && console.log(s));
    if (refModel) this.referenceKind = "ref_model";
    else if (hadAdapter) {
      copyAdapter(model, this.adapterName, REFERENCE);
      this.referenceKind = "adapter_copy";
    } else this.referenceKind = "adapters_disabled";
  }

  getModel(): ModelInterface {
    return this.#model;
  }

  /** Trains on preference pairs {prompt, chosen, rejected} (rows or a .jsonl/.json path). */
  async train(data: SftData, evalData?: SftData, { outDir, signal, resume, hooks }: TrainCallOptions = {}): Promise<FinetuneResult> {
    const c = this.config;
    let examples: PreferenceExample[], evalExamples: PreferenceExample[] = [], skipped = 0;
    const format = async (d: SftData) => formatPreferences(await loadRows(d), { tokenizer: this.#model.tokenizer!, chatTemplate: this.#model.chatTemplate, skipInvalid: c.skipInvalid });
    try {
      ({ examples, skipped } = await format(data));
      if (evalData !== undefined) evalExamples = (await format(evalData)).examples;
      if (!examples.length) throw new Error("[dpo] no preference pairs");
    } catch (e) {
      return failed(e);
    }
    const model = this.#model;
    const padId = model.tokenizer!.eosTokenId ?? 0; // TRL: pad falls back to EOS
    const limits = { maxPromptLength: c.maxPromptLength, maxLength: c.maxLength };
    const precompute = (list: PreferenceExample[]) => withBackend(model.backend, () => this.#precompute(list, padId, limits));
    const precomputed = c.precomputeRefLogProbs ? await precompute(examples) : undefined;
    const evalPrecomputed = c.precomputeRefLogProbs && evalExamples.length ? await precompute(evalExamples) : undefined;
    const sampler = new EpochSampler(examples.length, evalExamples.length, c.randomSeed);
    const source: BatchSource<PreferenceBatch> = {
      batch: (split: Split, batchSize: number, rng: Rng) => {
        const val = split !== "train" && evalExamples.length > 0;
        const idx = split === "train" ? sampler.next(batchSize) : sampler.nextVal(batchSize, rng);
        return collatePreferences(idx.map((i) => (val ? evalExamples : examples)[i]), idx, padId, limits, model.backend, val ? evalPrecomputed : precomputed);
      },
    };
    const perStep = c.batchSize * c.gradientAccumulationSteps;
    const iters = c.maxSteps ?? Math.max(1, Math.ceil(examples.length / perStep) * c.epochs);
    const evalBatches = evalExamples.length ? Math.ceil(evalExamples.length / c.batchSize) : 1;
    // as HF's gradient_checkpointing=True: enabled on the model, which keeps it
    if (c.gradientCheckpointing) model.module.gradientCheckpointing = true;
    model.module.train();
    try {
      return await runEngine<PreferenceBatch>({
        model, data: source, args: engineArgs(c, iters, evalBatches), optimizer: adapterOptimizer(model, c),
        loss: (_m, b) => this.#loss(b), tokens: (b) => b.x.size, outDir: outDir === undefined ? c.outputDir : outDir,
        resume: resume ?? c.resume, progress: c.progress, samplesPerStep: perStep, onTrainBegin: (step) => sampler.skipTo(step * perStep), hasEval: evalExamples.length > 0, signal,
        metrics: { rows_skipped: skipped, train_pairs: examples.length }, hooks,
      });
    } finally {
      model.module.eval();
    }
  }

  /**
   * Drops the frozen reference copy of the adapter (when there is one): the model is left as
   * without DPO's bookkeeping. The trainer cannot train after this.
   */
  dispose(): void {
    if (this.referenceKind === "adapter_copy" && loraLayers(this.#model.module).some(([, l]) => l.adapters.has(REFERENCE))) deleteAdapter(this.#model.module, REFERENCE);
  }

  /** Writes the trained adapter as a PEFT folder; returns the path. */
  async saveAdapter(dir: string): Promise<string> {
    return this.#model.saveAdapter(dir, this.adapterName);
  }

  /** The DPO loss of a batch and TRL's metrics as scalar tensors. */
  #loss(b: PreferenceBatch): LossOutput {
    const c = this.config;
    const policy = causalLmLogps(this.#model.module, b.x, b.y); // [2B]
    const reference = b.refLogps ?? noGrad(() => this.#referenceLogps(b.x, b.y));
    const avg = c.lossType === "ipo"; // TRL: ipo on per-token averages
    const pol = avg ? ops.div(policy, b.counts) : policy;
    const ref = avg ? ops.div(reference, b.counts) : reference;
    const B = b.x.shape[0] / 2;
    const logps: DpoLogps = { policyChosen: pol.narrow(0, 0, B), policyRejected: pol.narrow(0, B, B), refChosen: ref.narrow(0, 0, B), refRejected: ref.narrow(0, B, B) };
    const out = dpoLoss(logps, { beta: c.beta, lossType: c.lossType, labelSmoothing: c.labelSmoothing });
    const metrics = noGrad(() => {
      const rc = out.chosenRewards, rr = out.rejectedRewards;
      return {
        "rewards/chosen": ops.mean(rc),
        "rewards/rejected": ops.mean(rr),
        "rewards/accuracies": fractionGreater(rc, rr),
        "rewards/margins": ops.mean(ops.sub(rc, rr)),
        "logps/chosen": ops.mean(policy.narrow(0, 0, B).detach()),
        "logps/rejected": ops.mean(policy.narrow(0, B, B).detach()),
      };
    });
    return { loss: out.loss, metrics };
  }

  /** Reference log-probs [2B] of a batch, without gradients. */
  #referenceLogps(x: Tensor, y: Tensor): Tensor {
    if (this.#refModel) return causalLmLogps(this.#refModel.module, x, y);
    const module = this.#model.module;
    if (this.referenceKind === "adapters_disabled") return disableAdapters(module, () => causalLmLogps(module, x, y));
    return withActiveAdapter(module, REFERENCE, () => causalLmLogps(module, x, y));
  }

  /** One pass over the pairs: reference log-probs [chosen, rejected] per pair. */
  async #precompute(examples: PreferenceExample[], padId: number, limits: { maxPromptLength: number | null; maxLength: number | null }): Promise<Float32Array> {
    const out = new Float32Array(2 * examples.length);
    const bs = this.config.batchSize;
    const module = this.#model.module;
    const wasTraining = module.training;
    module.eval();
    try {
      for (let s = 0; s < examples.length; s += bs) {
        const idx = Array.from({ length: Math.min(bs, examples.length - s) }, (_, i) => s + i);
        const lp = scope(() => {
          const b = collatePreferences(idx.map((i) => examples[i]), idx, padId, limits, this.#model.backend);
          return keep(noGrad(() => this.#referenceLogps(b.x, b.y)));
        });
        const v = (await lp.data()) as Float32Array;
        lp.dispose();
        idx.forEach((i, k) => {
          out[2 * i] = v[k];
          out[2 * i + 1] = v[idx.length + k];
        });
      }
    } finally {
      module.train(wasTraining);
    }
    return out;
  }
}

/** Fraction of rows where a > b, on the device: the argmax over [b, a] (an f32 index, first on ties) is 1 exactly where a > b. */
function fractionGreater(a: Tensor, b: Tensor): Tensor {
  const n = a.shape[0];
  const { values, indices } = ops.maxWithIndex(ops.cat([b.reshape(n, 1), a.reshape(n, 1)], 1), 1); // [n]
  values.dispose();
  return ops.mean(indices);
}

/** Adds a frozen copy of adapter `from` as adapter `to` on every layer that has `from`. */
function copyAdapter(model: ModelInterface, from: string, to: string): void {
  for (const [, l] of loraLayers(model.module)) {
    if (!l.adapters.has(from)) continue;
    const cfg = l.adapters.get(from)!;
    // a later DPO run (the next topic of a curriculum) refreshes the copy
    if (!l.adapters.has(to)) l.addAdapter({ r: cfg.r, alpha: cfg.alpha, dropout: cfg.dropout, useRslora: cfg.useRslora, adapterName: to });
    const src = l.adapterWeights(from), dst = l.adapterWeights(to);
    copyInto(src.A, dst.A);
    copyInto(src.B, dst.B);
    dst.A.requiresGrad = dst.B.requiresGrad = false;
  }
  // modules_to_save: the reference runs a frozen copy of the policy's trained module too
  for (const [, w] of savedModuleWrappers(model.module)) {
    const src = w.copyOf(from);
    if (!src) continue;
    w.addAdapter(to);
    const dst = w.copyOf(to)!.freeze().stateDict();
    for (const [n, t] of src.stateDict()) copyInto(t, dst.get(n)!);
  }
  if (!adapterParameters(model.module, to).length) throw new Error(`[dpo] no adapter "${from}" to copy`);
}

/** Runs fn with `name` as the active adapter of every layer (trainability untouched). */
function withActiveAdapter<T>(module: ModelInterface["module"], name: string, fn: () => T): T {
  const layers: { activeAdapter: string | null }[] = [...loraLayers(module).map(([, l]) => l as LoRALinear), ...savedModuleWrappers(module).map(([, w]) => w)];
  const before = layers.map((l) => l.activeAdapter);
  for (const l of layers) l.activeAdapter = (l instanceof ModulesToSaveWrapper ? l.copyOf(name) : (l as LoRALinear).adapters.has(name)) ? name : null;
  try {
    return fn();
  } finally {
    layers.forEach((l, i) => (l.activeAdapter = before[i]));
  }
}
