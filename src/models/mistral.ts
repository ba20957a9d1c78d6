// Mistral (MistralForCausalLM): the Llama graph without biases, with a sliding attention window
// (exact as full causal attention while positions <= the window; beyond it kiln refuses).
// Reference: transformers models/mistral/modeling_mistral.py, configuration_mistral.py.

import type { ModelFamily } from "./family.ts";
import { fixedBiases, llamaFamily, LlamaForCausalLM, type LlamaConfig } from "./llama.ts";

const biases = fixedBiases("mistral", [false, false, false]);

export class MistralForCausalLM extends LlamaForCausalLM {
  static override readonly family = "mistral" as const;
  override get family(): ModelFamily<LlamaConfig, MistralForCausalLM> {
    return mistral;
  }
}

export const mistral = llamaFamily({
  name: "mistral",
  architecture: "MistralForCausalLM",
  // llama.cpp runs mistral as llama (convert_hf_to_gguf.py maps MistralForCausalLM to LlamaModel)
  gguf: { architecture: "llama", ropePermute: true },
  create: (config, backend) => new MistralForCausalLM(config, backend),
  read: (c, raw) => ({ ...biases.read(c, raw), slidingWindow: c.sliding_window ?? null }),
  write: (c) => {
    biases.check(c);
    return { sliding_window: c.slidingWindow };
  },
});
