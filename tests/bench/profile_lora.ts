// Where the wasm backend's time goes in one LoRA SFT step of lora.bench.ts's ~125M Llama (q,v
// adapters, batch 4 x 256): kernel_timer.ts's per-kernel medians over steps, as profile_step.ts for
// the baby GPT. Timings: never in tests.
// --loss full: logits then masked cross-entropy (as lora.bench.ts and PyTorch's harness); --loss sft:
// causalLmLoss, what the SFT trainer runs (the LM head in chunks over the labelled rows only).
//   bun tests/bench/profile_lora.ts [--steps 3] [--targets qv|all] [--blas auto] [--loss full|sft]

import { parseArgs } from "node:util";
import { createComputeBackend } from "../../src/backend/registry.ts";
import { kernelTimer } from "./kernel_timer.ts";
import { parseModelConfig, type LlamaConfig } from "../../src/models/config.ts";
import { LlamaForCausalLM } from "../../src/models/llama.ts";
import { applyLora } from "../../src/nn/lora_model.ts";
import { AdamW } from "../../src/optim/adamw.ts";
import { gradNormSq } from "../../src/optim/clip.ts";
import { scope } from "../../src/tensor/memory.ts";
import { Rng, seed } from "../../src/tensor/random.ts";
import { fromArray, useBackend } from "../../src/tensor/tensor.ts";
import { causalLmLoss, maskedCrossEntropy, shiftLabels } from "../../src/train/losses.ts";

const { values } = parseArgs({
  options: { blas: { type: "string", default: "auto" }, steps: { type: "string", default: "3" }, loss: { type: "string", default: "full" }, targets: { type: "string", default: "qv" } },
});
const TARGETS: Record<string, string[]> = { qv: ["q_proj", "v_proj"], all: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] };
const backend = await createComputeBackend("wasm", { blas: values.blas });
useBackend(backend);
seed(0);
const config = parseModelConfig({
  architectures: ["LlamaForCausalLM"], model_type: "llama", vocab_size: 32000, hidden_size: 768, intermediate_size: 2048,
  num_hidden_layers: 12, num_attention_heads: 12, num_key_value_heads: 4, max_position_embeddings: 256, rms_norm_eps: 1e-6,
  rope_theta: 10000, tie_word_embeddings: false,
}) as LlamaConfig;
const model = new LlamaForCausalLM(config, backend);
applyLora(model, { r: 8, loraAlpha: 16, loraDropout: 0.05, targetModules: TARGETS[values.targets!]! });
model.train();
const params = model.trainableParameters();
const opt = new AdamW(params, { lr: 3e-4, weightDecay: 0 });
const B = 4, T = 256, rng = new Rng(1);
const ids = Int32Array.from({ length: B * T }, () => rng.int(32000));
const labels = Int32Array.from(ids, (t, i) => (i % T < T / 2 ? -100 : t));
const x = fromArray(ids, [B, T], { dtype: "i32", backend });
const y = fromArray(shiftLabels(labels, B, T), [B, T], { dtype: "i32", backend });

const timer = kernelTimer(backend);
for (let s = 0; s < 1 + Number(values.steps); s++) {
  timer.step(() => scope(() => {
    const loss = values.loss === "sft" ? causalLmLoss(model, x, y) : maskedCrossEntropy(model.forward(x), y);
    loss.backward();
    opt.step({ gradNormSq: gradNormSq(params), maxNorm: 1 });
    opt.zeroGrad();
    return loss.dataSync()[0];
  }), s < 1);
}
timer.report(40, 1);
process.exit(0);
