// TrainArgs: every knob of the training loop, a zod schema with defaults and a one-line doc per
// field. Defaults are nanoGPT's CPU "baby GPT" run on Tiny Shakespeare.

import { z } from "zod";

export const TrainArgs = z.strictObject({
  /** optimizer steps to run */
  iters: z.number().int().positive().default(2000),
  /** sequences per micro-batch */
  batchSize: z.number().int().positive().default(12),
  /** micro-batches per optimizer step (gradient accumulation) */
  gradAccum: z.number().int().positive().default(1),
  /** peak learning rate */
  lr: z.number().positive().default(1e-3),
  /** learning rate at the end of the cosine decay */
  minLr: z.number().nonnegative().default(1e-4),
  /** linear warmup steps */
  warmupIters: z.number().int().nonnegative().default(100),
  /** step at which the cosine decay reaches minLr (default: iters) */
  decayIters: z.number().int().positive().optional(),
  /** "cosine" (warmup + cosine, nanoGPT) or "constant" */
  schedule: z.enum(["cosine", "constant"]).default("cosine"),
  /** AdamW decoupled weight decay on tensors of rank >= 2 (biases and norms get none) */
  weightDecay: z.number().nonnegative().default(0.1),
  beta1: z.number().min(0).lt(1).default(0.9),
  beta2: z.number().min(0).lt(1).default(0.99),
  eps: z.number().positive().default(1e-8),
  /** clip the global gradient norm to this (0 = off) */
  gradClip: z.number().nonnegative().default(1.0),
  /** evaluate every this many steps (0 = only at the end) */
  evalInterval: z.number().int().nonnegative().default(250),
  /** batches per evaluation */
  evalIters: z.number().int().positive().default(20),
  /** batches for the final evaluation */
  finalEvalIters: z.number().int().positive().default(200),
  /** log a metrics line every this many steps */
  logInterval: z.number().int().positive().default(10),
  /** write a checkpoint every this many steps (0 = only at the end and on Ctrl-C) */
  checkpointInterval: z.number().int().nonnegative().default(500),
  /** stop early when the val loss has not improved for this many evaluations (0 = never) */
  earlyStopPatience: z.number().int().nonnegative().default(0),
  /** seed of weight init, batch sampling and dropout */
  seed: z.number().int().default(1337),
});
export type TrainArgs = z.infer<typeof TrainArgs>;
