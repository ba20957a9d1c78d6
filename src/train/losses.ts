// The fine-tuning losses: masked next-token cross-entropy (SFT on completions only) and the DPO
// family (sigmoid, ipo, hinge, label smoothing) on per-sequence log-probabilities. Labels follow
// Hugging Face's convention: `labels[b, t]` is the token at position t, -100 where no loss is
// taken; the shift to next-token targets happens in the collator (targets[b, t] = labels[b, t+1]),
// so the model's logits at position t are scored against targets[b, t] without a narrow.
// References: TRL trainer/sft_trainer.py (completion_only_loss) and trainer/dpo_trainer.py
// (concatenated_forward, dpo_loss).

import type { Tensor } from "../tensor/tensor.ts";
import * as ops from "../ops/index.ts";

export const IGNORE_INDEX = -100;

/** labels [B, T] (HF, -100 masked) -> next-token targets [B, T]: labels shifted left, -100 at the end. */
export function shiftLabels(labels: Int32Array, batch: number, length: number): Int32Array {
  const out = new Int32Array(batch * length).fill(IGNORE_INDEX);
  for (let b = 0; b < batch; b++) out.set(labels.subarray(b * length + 1, (b + 1) * length), b * length);
  return out;
}

/** Mean cross-entropy over the positions whose target is not -100 (transformers' causal LM loss). */
export function maskedCrossEntropy(logits: Tensor, targets: Tensor): Tensor {
  return ops.crossEntropy(logits, targets, { ignoreIndex: IGNORE_INDEX, reduction: "mean" });
}

/**
 * log p(sequence) per row: Σ_t log softmax(logits[b, t])[targets[b, t]] over counted targets
 * (TRL's per-token logps summed with the loss mask). logits [B, T, V], targets [B, T] -> [B].
 */
export function sequenceLogps(logits: Tensor, targets: Tensor): Tensor {
  const nll = ops.crossEntropy(logits, targets, { ignoreIndex: IGNORE_INDEX, reduction: "none" }); // [B, T]
  return ops.neg(ops.sum(nll, 1)); // [B]
}

/**
 * A causal LM as the chunked losses see it: forward gives logits; a model that also exposes its
 * hidden states and a plain head (kiln's GPT and Llama families) lets the loss apply the head
 * chunk by chunk, never holding [B, T, V] logits.
 */
export interface CausalLM {
  forward(ids: Tensor): Tensor;
  hiddenStates?(ids: Tensor): Tensor;
  readonly outputHead?: { weight: Tensor; bias: Tensor | null } | null;
}

/** Per-position next-token losses [B, T] (0 where masked), or their reduction, through the cheapest path the model allows. */
function tokenLoss(model: CausalLM, ids: Tensor, targets: Tensor, reduction: "mean" | "none"): Tensor {
  const head = model.outputHead;
  const options = { ignoreIndex: IGNORE_INDEX, reduction } as const;
  if (!head || !model.hiddenStates) return ops.crossEntropy(model.forward(ids), targets, options);
  return ops.linearCrossEntropy(model.hiddenStates(ids), head.weight, targets, { ...options, bias: head.bias });
}

/** maskedCrossEntropy of the model's logits for ids, computed without the [B, T, V] logits where the model allows. */
export function causalLmLoss(model: CausalLM, ids: Tensor, targets: Tensor): Tensor {
  return tokenLoss(model, ids, targets, "mean");
}

/** sequenceLogps of the model's logits for ids [B, T] -> [B], without the [B, T, V] logits where the model allows. */
export function causalLmLogps(model: CausalLM, ids: Tensor, targets: Tensor): Tensor {
  return ops.neg(ops.sum(tokenLoss(model, ids, targets, "none"), 1));
}

/**
 * log σ(x) = x/2 − |x|/2 − log(1 + e^{−|x|}): stable far into both tails, and its gradient is
 * σ(−x) everywhere — at x = 0 too (where DPO starts: policy = reference), which a split into
 * −relu(−x) − log(1 + e^{−|x|}) would get wrong (each piece's kink has derivative 0 there).
 */
export function logSigmoid(x: Tensor): Tensor {
  const absX = ops.add(ops.relu(x), ops.relu(ops.neg(x)));
  return ops.sub(ops.mul(ops.sub(x, absX), 0.5), ops.log(ops.add(ops.exp(ops.neg(absX)), 1)));
}

export type DpoLossType = "sigmoid" | "ipo" | "hinge";

export interface DpoLossOptions {
  beta: number;
  lossType?: DpoLossType;
  /** conservative DPO (cDPO): the probability that a preference label is flipped (sigmoid only) */
  labelSmoothing?: number;
}

export interface DpoLogps {
  /** [B] log-probabilities of the chosen / rejected completions under the policy and the reference */
  policyChosen: Tensor;
  policyRejected: Tensor;
  refChosen: Tensor;
  refRejected: Tensor;
}

export interface DpoOutput {
  /** mean loss over the pairs (differentiable through the policy logps) */
  loss: Tensor;
  /** [B] β·(π_c − ref_c) and β·(π_r − ref_r), without gradient */
  chosenRewards: Tensor;
  rejectedRewards: Tensor;
}

/**
 * TRL's DPOTrainer.dpo_loss. With h = (π_c − π_r) − (ref_c − ref_r):
 *   sigmoid: −log σ(βh)(1 − ε) − log σ(−βh) ε      (Bradley–Terry; ε = label_smoothing)
 *   ipo:     (h − 1/(2β))²                          (the caller averages logps per token, as TRL)
 *   hinge:   relu(1 − βh)
 */
export function dpoLoss({ policyChosen, policyRejected, refChosen, refRejected }: DpoLogps, { beta, lossType = "sigmoid", labelSmoothing = 0 }: DpoLossOptions): DpoOutput {
  if (!(beta > 0)) throw new Error(`[dpo] beta must be > 0, got ${beta}`);
  if (labelSmoothing < 0 || labelSmoothing >= 0.5) throw new Error(`[dpo] label_smoothing must be in [0, 0.5), got ${labelSmoothing}`);
  if (labelSmoothing > 0 && lossType !== "sigmoid") throw new Error(`[dpo] label_smoothing applies to the sigmoid loss only, not "${lossType}"`);
  const refMargin = ops.sub(refChosen.detach(), refRejected.detach());
  const h = ops.sub(ops.sub(policyChosen, policyRejected), refMargin); // [B]
  let losses: Tensor;
  switch (lossType) {
    case "sigmoid": {
      const bh = ops.mul(h, beta);
      losses = ops.neg(logSigmoid(bh));
      if (labelSmoothing > 0) losses = ops.sub(ops.mul(losses, 1 - labelSmoothing), ops.mul(logSigmoid(ops.neg(bh)), labelSmoothing));
      break;
    }
    case "ipo":
      losses = ops.pow(ops.sub(h, 1 / (2 * beta)), 2);
      break;
    case "hinge":
      losses = ops.relu(ops.add(ops.mul(h, -beta), 1));
      break;
    default:
      throw new Error(`[dpo] unknown loss_type "${lossType as string}" (expected sigmoid, ipo or hinge)`);
  }
  const chosenRewards = ops.mul(ops.sub(policyChosen.detach(), refChosen.detach()), beta);
  const rejectedRewards = ops.mul(ops.sub(policyRejected.detach(), refRejected.detach()), beta);
  return { loss: ops.mean(losses), chosenRewards, rejectedRewards };
}

/** The metrics TRL logs for a DPO batch, read back as numbers. */
export async function dpoMetrics(out: DpoOutput, logps: DpoLogps, prefix = ""): Promise<Record<string, number>> {
  const rc = (await out.chosenRewards.data()) as Float32Array;
  const rr = (await out.rejectedRewards.data()) as Float32Array;
  const pc = (await logps.policyChosen.data()) as Float32Array;
  const pr = (await logps.policyRejected.data()) as Float32Array;
  const n = rc.length;
  const avg = (f: (i: number) => number) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += f(i);
    return s / Math.max(n, 1);
  };
  return {
    [`${prefix}rewards/chosen`]: avg((i) => rc[i]),
    [`${prefix}rewards/rejected`]: avg((i) => rr[i]),
    [`${prefix}rewards/accuracies`]: avg((i) => (rc[i] > rr[i] ? 1 : 0)),
    [`${prefix}rewards/margins`]: avg((i) => rc[i] - rr[i]),
    [`${prefix}logps/chosen`]: avg((i) => pc[i]),
    [`${prefix}logps/rejected`]: avg((i) => pr[i]),
  };
}
