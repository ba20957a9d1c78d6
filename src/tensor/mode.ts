// Train/eval mode per call. A module's `training` flag (train()/eval()) is the default; a call may
// run modules in the other mode without writing that flag, which the model shares with every other
// caller: generation while a training step is in flight, concurrent requests on one model.
// AsyncLocalStorage carries the choice across the call's awaits and nowhere else.

import { AsyncLocalStorage } from "node:async_hooks";

const override = new AsyncLocalStorage<boolean>();

/**
 * Runs fn (sync or async) with every module in training mode `training` (false: eval), whatever
 * their own flags; the flags are left as they are. withTraining(false) turns off every dropout in
 * the call, also a dropout op called with training = true by a module that reads its own flag.
 * @example const logits = withTraining(false, () => model.forward(ids))
 */
export function withTraining<T>(training: boolean, fn: () => T): T {
  return override.run(training, fn);
}

/** Whether `module` runs in training mode in the running call: withTraining's choice, else its flag. */
export function isTraining(module: { readonly training: boolean }): boolean {
  return override.getStore() ?? module.training;
}

/** withTraining's choice for the running call, if any. */
export function trainingOverride(): boolean | undefined {
  return override.getStore();
}

// Mixed precision per call, as torch.autocast: inside withAutocast(true, fn) matrix products
// (matmul, linear, and the backward products of those recorded there) multiply in f16 on
// backends that can (WebGPU with shader-f16), and the activations ops keep for the backward are
// f16 copies (src/ops/autocast.ts); op outputs, the weights, norms, softmax, the loss and the
// optimizer stay f32. Other calls running at the same time are unaffected.
const autocast = new AsyncLocalStorage<{ enabled: boolean; f16Saves: boolean }>();

export interface AutocastOptions {
  /** keep the backward's activations in f16 (default true; false: f16 products only) */
  f16Saves?: boolean;
}

/**
 * Runs fn (sync or async) with matrix products in f16 (enabled) or f32 (false) where the backend
 * has f16 arithmetic, and the activations saved for the backward in f16.
 * @example const loss = await withAutocast(true, async () => lossOf(model.forward(x), y))
 */
export function withAutocast<T>(enabled: boolean, fn: () => T, { f16Saves = true }: AutocastOptions = {}): T {
  return autocast.run({ enabled, f16Saves }, fn);
}

/** Whether the running call is inside withAutocast(true, ...). */
export function isAutocast(): boolean {
  return autocast.getStore()?.enabled ?? false;
}

/** Whether the running call keeps the backward's activations in f16 (inside withAutocast(true) with f16Saves). */
export function isAutocastF16Saves(): boolean {
  const s = autocast.getStore();
  return !!s && s.enabled && s.f16Saves;
}
