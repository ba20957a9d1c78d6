// Fine-tune a local Hugging Face model with LoRA: SFT on a few chat examples, then DPO on
// preference pairs, then save the adapter (PEFT layout) and a merged model. Copy this file and
// point it at your model folder: bun examples/finetune.ts [model dir]
// Without an argument it uses models/tiny-llama, made first by examples/tiny_llama.ts (a small
// Qwen2-style model pretrained on Tiny Shakespeare by kiln itself: no downloads).

import { stat } from "node:fs/promises";
import { createBackend } from "../src/index.ts";
import { makeTinyLlama } from "./tiny_llama.ts";

const dir = process.argv[2] ?? "models/tiny-llama";
const quick = process.env.KILN_EXAMPLE_QUICK === "1"; // a fast smoke run (tests)
if (!(await stat(dir).catch(() => null))) await makeTinyLlama(dir, quick ? { steps: 5, vocabSize: 400 } : {});

const backend = await createBackend("auto", { seed: 42 });
const model = await backend.loadModel(dir);
console.log(`${dir} on ${model.device}`);

// The task: answer who speaks a famous line, in one short sentence.
const qa: [string, string][] = [
  ["Who says 'Wherefore art thou Romeo?'", "Juliet says it."],
  ["Who says 'To be, or not to be'?", "Hamlet says it."],
  ["Who says 'Out, damned spot!'?", "Lady Macbeth says it."],
  ["Who says 'Et tu, Brute?'", "Caesar says it."],
  ["Who says 'A horse! my kingdom for a horse!'?", "King Richard says it."],
  ["Who says 'All the world's a stage'?", "Jaques says it."],
];
const chat = (q: string) => [{ role: "user", content: q }];
const ask = async (q: string) => {
  const prompt = model.chatTemplate!.apply(chat(q), { addGenerationPrompt: true });
  const { text } = await model.generate(prompt, { maxNewTokens: 12, addSpecialTokens: false });
  return text.trim();
};

const probe = qa[0][0];
console.log(`before: ${probe} -> ${JSON.stringify(await ask(probe))}`);

const sft = backend.createSftTrainer(model, {
  learning_rate: 3e-3, num_epochs: quick ? 1 : 60, per_device_batch_size: 3, lora_r: 8, lora_alpha: 16,
  lora_dropout: 0.05, target_modules: "all-linear", logging_steps: 20, lr_scheduler_type: "constant",
});
const sftResult = await sft.train(qa.map(([q, a]) => ({ messages: [...chat(q), { role: "assistant", content: a }] })));
console.log(`SFT: ${sftResult.steps} steps, loss ${sftResult.lossHistory![0].toFixed(3)} -> ${sftResult.final_loss!.toFixed(3)} in ${sftResult.training_time_seconds.toFixed(1)} s`);
console.log(`after SFT: ${probe} -> ${JSON.stringify(await ask(probe))}`);

// Preference: the right speaker over a wrong one.
const pairs = qa.map(([q, a], i) => ({ prompt: chat(q), chosen: [{ role: "assistant", content: a }], rejected: [{ role: "assistant", content: qa[(i + 1) % qa.length][1] }] }));
const dpo = backend.createDpoTrainer(model, { learning_rate: 3e-4, max_steps: quick ? 2 : 20, per_device_batch_size: 3, beta: 0.1, logging_steps: 10, lr_scheduler_type: "constant" });
const dpoResult = await dpo.train(pairs);
const m = dpoResult.metrics;
console.log(`DPO: loss ${dpoResult.lossHistory![0].toFixed(3)} -> ${dpoResult.final_loss!.toFixed(3)}, rewards/accuracies ${m["rewards/accuracies"].toFixed(2)}, rewards/margins ${m["rewards/margins"].toFixed(3)}`);
console.log(`after DPO: ${probe} -> ${JSON.stringify(await ask(probe))}`);

console.log(`adapter: ${await model.saveAdapter("runs/finetune-example/adapter")}`);
console.log(`merged model: ${await model.savePretrained("runs/finetune-example/merged")}`);
backend.getDeviceManager().emptyCache();
