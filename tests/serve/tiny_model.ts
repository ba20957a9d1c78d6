// A small served model made by kiln itself (no pretrained weights can be downloaded): a randomly
// initialised Llama-family model (seeded) with the byte-level BPE tokenizer of the qwen2 fixture
// (300 ids, <|endoftext|> = 299) and a ChatML chat template, written as a Hugging Face folder.
// Used by the serve tests and the serve bench.

import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createModel, parseModelConfig } from "../../src/models/index.ts";
import { Rng } from "../../src/tensor/random.ts";

export const FIXTURE_TOKENIZER = new URL("../fixtures/hf/qwen2/", import.meta.url).pathname;

export const CHATML = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

export interface TinyModelOptions {
  hidden?: number;
  layers?: number;
  heads?: number;
  context?: number;
  seed?: number;
}

/** Writes the model folder and returns its path (a fresh temp folder unless `dir` is given). */
export async function makeTinyModel({ hidden = 64, layers = 2, heads = 4, context = 256, seed = 5 }: TinyModelOptions = {}, dir?: string): Promise<string> {
  dir ??= await mkdtemp(join(tmpdir(), "kiln-serve-"));
  const config = parseModelConfig({
    architectures: ["LlamaForCausalLM"], model_type: "llama", vocab_size: 300, bos_token_id: 299, eos_token_id: 299,
    hidden_size: hidden, intermediate_size: 2 * hidden, num_hidden_layers: layers, num_attention_heads: heads,
    num_key_value_heads: Math.max(1, heads / 2), max_position_embeddings: context, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: true,
  });
  const saved = Rng.global;
  Rng.global = new Rng(seed); // weight init draws from the global stream: a seeded one, put back after
  try {
    const model = createModel(config);
    await model.savePretrained(dir, { tokenizerDir: FIXTURE_TOKENIZER });
    model.dispose();
  } finally {
    Rng.global = saved;
  }
  const tokenizerConfig = { tokenizer_class: "PreTrainedTokenizerFast", eos_token: "<|endoftext|>", bos_token: null, model_max_length: context, chat_template: CHATML };
  await writeFile(join(dir, "tokenizer_config.json"), JSON.stringify(tokenizerConfig, null, 2));
  return dir;
}
