// Qwen2 (Qwen2ForCausalLM): the Llama graph with biases on q/k/v (none elsewhere), a tied or
// untied head. Sliding windows per layer (use_sliding_window) are not implemented.
// Reference: transformers models/qwen2/modeling_qwen2.py, configuration_qwen2.py.

import type { ModelFamily } from "./family.ts";
import { fixedBiases, llamaFamily, LlamaForCausalLM, type LlamaConfig } from "./llama.ts";

const biases = fixedBiases("qwen2", [true, false, false]);

export class Qwen2ForCausalLM extends LlamaForCausalLM {
  static override readonly family = "qwen2" as const;
  override get family(): ModelFamily<LlamaConfig, Qwen2ForCausalLM> {
    return qwen2;
  }
}

export const qwen2 = llamaFamily({
  name: "qwen2",
  architecture: "Qwen2ForCausalLM",
  // llama.cpp runs qwen2 with HF's rotate-half RoPE (NEOX), unpermuted
  gguf: { architecture: "qwen2", ropePermute: false },
  create: (config, backend) => new Qwen2ForCausalLM(config, backend),
  read: (c, raw) => ({ ...biases.read(c, raw), slidingWindow: null }),
  write: (c) => {
    biases.check(c);
    return { use_sliding_window: false };
  },
});
