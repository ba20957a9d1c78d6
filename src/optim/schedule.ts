// Learning-rate schedules. warmupCosine is nanoGPT's get_lr: linear warmup, cosine decay to
// minLr at decaySteps, then constant minLr.

export interface WarmupCosine {
  lr: number;
  minLr: number;
  warmupSteps: number;
  decaySteps: number;
}

/** The learning rate at step `it` (0-based). */
export function warmupCosine(it: number, { lr, minLr, warmupSteps, decaySteps }: WarmupCosine): number {
  // 1) linear warmup for warmupSteps steps
  if (it < warmupSteps) return (lr * (it + 1)) / (warmupSteps + 1);
  // 2) after decaySteps, the minimum
  if (it > decaySteps) return minLr;
  // 3) in between, cosine decay from lr down to minLr
  const ratio = (it - warmupSteps) / Math.max(decaySteps - warmupSteps, 1);
  const coeff = 0.5 * (1 + Math.cos(Math.PI * ratio));
  return minLr + coeff * (lr - minLr);
}
