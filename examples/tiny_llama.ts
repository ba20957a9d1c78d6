// Makes a small Llama-architecture model with kiln itself, for fine-tuning examples and tests where
// no pretrained model can be downloaded: a byte-level BPE tokenizer (ChatML special tokens and chat
// template, as Qwen2.5-Instruct's) trained on Tiny Shakespeare, a Qwen2-style model (q/k/v biases,
// tied head, grouped-query attention) pretrained on it for a few minutes, saved as a Hugging Face
// folder with bfloat16 weights. Run: bun examples/tiny_llama.ts [out dir] [steps]

import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as kiln from "../src/index.ts";
import type { SafetensorsTensor } from "../src/io/safetensors.ts";

export const CHATML =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export interface TinyLlamaOptions {
  /** pretraining steps (default 400: a few minutes on a CPU) */
  steps?: number;
  vocabSize?: number;
  hidden?: number;
  layers?: number;
  text?: string;
  log?: (s: string) => void;
  /** where to train (default: the best this machine has) */
  backend?: kiln.Backend;
}

/** Trains the tokenizer and the model and writes the folder; returns its path. */
export async function makeTinyLlama(dir: string, { steps = 400, vocabSize = 4096, hidden = 128, layers = 4, text = "data/tinyshakespeare.txt", log = console.log, backend }: TinyLlamaOptions = {}): Promise<string> {
  const compute = backend ?? (await kiln.createComputeBackend("auto", { seed: 0 }));
  return kiln.withBackend(compute, () => make(dir, { steps, vocabSize, hidden, layers, text, log }));
}

async function make(dir: string, { steps, vocabSize, hidden, layers, text, log }: Required<Omit<TinyLlamaOptions, "backend">>): Promise<string> {
  const root = new URL("..", import.meta.url).pathname;
  const corpus = text.startsWith("/") ? text : join(root, text);
  log(`tokenizer: byte-level BPE, ${vocabSize} tokens, on ${corpus}`);
  await kiln.trainBpeFiles([corpus], dir, { vocabSize, specialTokens: ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], pattern: "qwen2", eosToken: "<|im_end|>" });
  const configPath = join(dir, "tokenizer_config.json");
  const tokConfig = JSON.parse(await readFile(configPath, "utf8"));
  await writeFile(configPath, JSON.stringify({ ...tokConfig, chat_template: CHATML, pad_token: "<|endoftext|>" }, null, 2));
  const tokenizer = await kiln.loadTokenizer(dir);
  const ids = Int32Array.from(tokenizer.encode(await readFile(corpus, "utf8"), { addSpecialTokens: false }));
  const imEnd = tokenizer.tokenToId("<|im_end|>")!, endOfText = tokenizer.tokenToId("<|endoftext|>")!;

  const heads = hidden / 32;
  const model = new kiln.Qwen2ForCausalLM({
    family: "qwen2", vocabSize: tokenizer.vocabSize, nEmbd: hidden, nLayer: layers, nHead: heads, nKvHead: heads % 2 === 0 ? heads / 2 : heads,
    headDim: 32, intermediateSize: hidden * 8 / 3 - ((hidden * 8 / 3) % 32), blockSize: 256, rmsNormEps: 1e-6, ropeTheta: 10000,
    qkvBias: true, oBias: false, mlpBias: false, tieWordEmbeddings: true, slidingWindow: null, attentionDropout: 0,
    bosTokenId: null, eosTokenId: imEnd, padTokenId: endOfText, torchDtype: "bfloat16",
  });
  log(`model: Qwen2-style, ${model.numParameters().toLocaleString("en-US")} parameters, ${ids.length.toLocaleString("en-US")} tokens of text`);
  const trainer = new kiln.Trainer({
    model, data: new kiln.TokenDataset(ids, 128),
    args: { iters: steps, batchSize: 8, lr: 5e-3, minLr: 5e-4, warmupIters: Math.min(50, steps), evalInterval: 0, finalEvalIters: 10, logInterval: 50, checkpointInterval: 0, weightDecay: 0.1 },
    outDir: null,
  });
  const result = await trainer.fit();
  log(`pretrained ${result.steps} steps: val loss ${result.finalValLoss?.toFixed(3)}`);
  await model.savePretrained(dir, { tokenizerDir: dir, generationConfig: { eos_token_id: [imEnd, endOfText], pad_token_id: endOfText, max_new_tokens: 64 } });
  await toBfloat16(join(dir, "model.safetensors"));
  const config = JSON.parse(await readFile(join(dir, "config.json"), "utf8"));
  await writeFile(join(dir, "config.json"), JSON.stringify({ ...config, torch_dtype: "bfloat16" }, null, 2));
  model.dispose();
  return dir;
}

/** Rewrites a safetensors file's float tensors as BF16 (how released checkpoints ship). */
async function toBfloat16(path: string): Promise<void> {
  const file = await kiln.readSafetensors(path);
  const tensors: Record<string, SafetensorsTensor> = {};
  for (const name of file.names()) tensors[name] = { dtype: "BF16", shape: file.info(name).shape, data: (await file.read(name)) as Float32Array };
  await kiln.writeSafetensors(path, tensors, { format: "pt" });
}

if (import.meta.main) {
  const dir = process.argv[2] ?? "models/tiny-llama";
  await makeTinyLlama(dir, { steps: Number(process.argv[3] ?? 400) });
  console.log(`wrote ${dir}`);
}
