// Load a local Hugging Face model folder and stream a continuation: kiln's public API for
// pretrained models. Run: bun examples/generate.ts [model folder] [prompt]
// (default: the tiny random-weight Llama fixture, so it runs anywhere; its text is gibberish)
import * as kiln from "../src/index.ts";

const dir = process.argv[2] ?? new URL("../tests/fixtures/hf/llama", import.meta.url).pathname;
const prompt = process.argv[3] ?? "The quick brown fox";

const backend = await kiln.init("auto", { seed: 0 });
const { model, tokenizer, generationConfig, config } = await kiln.loadPretrained(dir);
console.error(`${config.family} model, ${model.parameters().length} tensors, on ${backend.name}`);

const pieces = kiln.stream(model, tokenizer!, prompt, { maxNewTokens: 24, temperature: 0.8, topP: 0.95, seed: 1, generationConfig });
let result;
for (;;) {
  const next = await pieces.next();
  if (next.done) { result = next.value; break; }
  process.stdout.write(next.value);
}
const t = result.timings;
console.log(`\n[${t.prefillTokens} prompt tokens, ${t.decodeTokens} decode steps, ${result.finishReason}]`);
model.dispose();
backend.dispose();
