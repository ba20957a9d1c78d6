// Gradient checkpointing, as torch.utils.checkpoint (Hugging Face gradient_checkpointing=True):
// a block's forward runs without recording its graph, so its intermediates (attention inputs, MLP
// activations, dropout outputs) are freed as soon as the block returns, and only its inputs and
// output stay alive. In backward the block runs again with the graph on, and its gradients flow
// from that recomputed graph: one extra forward per block buys activations of one block at a time.
// The recompute sees what the first run saw: the same RNG state (so every dropout draws the same
// seed, hence the same mask), the same train/eval override and the same autocast mode.
// Parameters the block uses are passed in so the tape knows the output depends on them (a frozen
// embedding feeding LoRA blocks gives an input that requires no grad; the adapter weights still
// must get theirs): the recompute returns their gradients to the tape, which adds them to .grad.

import type { Tensor } from "../tensor/tensor.ts";
import { scope } from "../tensor/memory.ts";
import { currentRng, Rng, withRng } from "../tensor/random.ts";
import { isAutocast, trainingOverride, withAutocast, withTraining } from "../tensor/mode.ts";
import { enableGrad, grad, noGrad, record, willRecord } from "./tape.ts";

/**
 * fn(...inputs) with its intermediates recomputed in backward instead of kept. `params`: the
 * tensors fn reads besides its inputs that may take gradients (a module's parameters); other
 * captured tensors must be constants. fn must be deterministic given the RNG state.
 * @example x = checkpoint((h) => layer.forward(h, 0), [x], layer.parameters())
 */
export function checkpoint(fn: (...xs: Tensor[]) => Tensor, inputs: readonly Tensor[], params: readonly Tensor[] = []): Tensor {
  const trainable = params.filter((p) => p.requiresGrad && !inputs.includes(p));
  const all = [...inputs, ...trainable];
  if (!willRecord(all)) return fn(...inputs); // no graph to save memory on (inference, frozen block)
  const rng = currentRng();
  const rngState = rng.getState();
  const training = trainingOverride();
  const autocast = isAutocast();
  // the scope frees every intermediate of the block; only its output leaves it
  const out = scope(() => noGrad(() => fn(...inputs)));
  if (inputs.includes(out) || params.includes(out)) {
    throw new Error("[checkpoint] the block returned one of its inputs: there is nothing to recompute");
  }
  return record(out, "custom", all, {
    name: "checkpoint",
    backward: (g, needs) => {
      const replay = new Rng(0);
      replay.setState(rngState);
      const xs = inputs.map((x, i) => {
        const d = x.detach();
        d.requiresGrad = needs[i] && x.dtype === "f32";
        return d;
      });
      const rerun = () => withAutocast(autocast, () => fn(...xs));
      const y = enableGrad(() => withRng(replay, () => (training === undefined ? rerun() : withTraining(training, rerun))));
      if (!y.requiresGrad) return all.map(() => null);
      const wanted = [...xs, ...trainable].map((t, j) => (needs[j] && t.requiresGrad ? t : null));
      const grads = noGrad(() => grad(y, wanted.filter((t): t is Tensor => t !== null), g));
      let k = 0;
      return wanted.map((t) => (t ? grads[k++] : null));
    },
  });
}
