// The server through the official `openai` npm client, on loopback: models, completions, chat,
// streaming, n, seeds, stop strings, logprobs, usage. Greedy answers are checked against kiln's own
// generate() on the same model, one request at a time and with 8 requests decoding together (the
// batched decode must not change a single token).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import type { KilnServer } from "../../src/serve/server.ts";
import { loadServedModel, type LoadedModelEntry } from "../../src/serve/load.ts";
import { generate } from "../../src/models/generate.ts";
import { useBackend } from "../../src/tensor/tensor.ts";
import { getBackend } from "../backends.ts";
import { makeTinyModel } from "./tiny_model.ts";
import { startServer, type Served } from "./harness.ts";

let entry: LoadedModelEntry;
let served: Served;
let api: KilnServer;
let client: OpenAI;

beforeAll(async () => {
  useBackend(await getBackend("wasm"));
  const dir = await makeTinyModel();
  entry = await loadServedModel(dir, { name: "tiny" });
  served = startServer({ models: [entry], maxBatch: 8 }, { disposeModels: true, dirs: [dir] });
  ({ api, client } = served);
});

afterAll(() => served.close());

/** Decode steps so far, and those with one sequence (from the Prometheus text). */
function steps(): { total: number; single: number } {
  const text = api.metrics.render();
  return { total: Number(/^kiln_batch_size_count (\d+)$/m.exec(text)![1]), single: Number(/^kiln_batch_size_bucket\{le="1"\} (\d+)$/m.exec(text)![1]) };
}

const greedy = (prompt: string, maxNewTokens: number) =>
  generate(entry.model, entry.tokenizer, prompt, { maxNewTokens, temperature: 0, stopTokens: [299] });

describe("serve with the openai client", () => {
  test("models.list names the served model", async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual(["tiny"]);
  });

  test("completions: greedy text and usage equal kiln's generate()", async () => {
    const r = await client.completions.create({ model: "tiny", prompt: "The quick brown fox", max_tokens: 12, temperature: 0 });
    const want = await greedy("The quick brown fox", 12);
    expect(r.object).toBe("text_completion");
    expect(r.choices[0].text).toBe(want.text);
    expect(r.choices[0].finish_reason).toBe(want.finishReason);
    expect(r.usage).toEqual({ prompt_tokens: want.promptTokens.length, completion_tokens: want.tokens.length, total_tokens: want.promptTokens.length + want.tokens.length });
  });

  test("8 concurrent greedy completions each equal their generate() (batched decode changes nothing)", async () => {
    const prompts = Array.from({ length: 8 }, (_, i) => `prompt number ${i}: ${"ab".repeat(i)}`);
    const before = steps();
    const got = await Promise.all(prompts.map((prompt, i) => client.completions.create({ model: "tiny", prompt, max_tokens: 10 + i, temperature: 0 })));
    for (const [i, prompt] of prompts.entries()) expect(got[i].choices[0].text, prompt).toBe((await greedy(prompt, 10 + i)).text);
    const after = steps();
    expect(after.total - before.total).toBeGreaterThan(after.single - before.single); // some steps decoded several sequences
  });

  test("chat: the model folder's template renders the messages; greedy reply equals generate() on that prompt", async () => {
    const messages = [{ role: "system" as const, content: "Be brief." }, { role: "user" as const, content: "Hello there" }];
    const r = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 9, temperature: 0 });
    const prompt = entry.chatTemplate!.apply(messages, { addGenerationPrompt: true });
    expect(prompt).toBe("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n");
    const want = await generate(entry.model, entry.tokenizer, entry.tokenizer.encode(prompt, { addSpecialTokens: false }), { maxNewTokens: 9, temperature: 0, stopTokens: [299] });
    expect(r.object).toBe("chat.completion");
    expect(r.choices[0].message).toEqual({ role: "assistant", content: want.text } as typeof r.choices[0]["message"]);
    expect(r.usage?.completion_tokens).toBe(want.tokens.length);
  });

  test("streaming completions: chunks join to the non-streamed text; include_usage sends usage last", async () => {
    const whole = await client.completions.create({ model: "tiny", prompt: "Streaming", max_tokens: 15, temperature: 0 });
    const s = await client.completions.create({ model: "tiny", prompt: "Streaming", max_tokens: 15, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let text = "";
    const finishes: (string | null)[] = [];
    let usage: unknown = null;
    for await (const chunk of s) {
      for (const c of chunk.choices) (text += c.text), finishes.push(c.finish_reason);
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(whole.choices[0].text);
    expect(finishes.at(-1)).toBe(whole.choices[0].finish_reason);
    expect(finishes.slice(0, -1).every((f) => f === null)).toBe(true);
    expect(usage).toEqual(whole.usage);
  });

  test("streaming chat: role first, then content deltas, then finish_reason", async () => {
    const messages = [{ role: "user" as const, content: "stream me" }];
    const whole = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 8, temperature: 0 });
    const s = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 8, temperature: 0, stream: true });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const c of s) chunks.push(c);
    expect(chunks[0].choices[0].delta.role).toBe("assistant");
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe(whole.choices[0].message.content!);
    expect(chunks.at(-1)!.choices[0].finish_reason).toBe(whole.choices[0].finish_reason);
    expect(chunks.every((c) => c.object === "chat.completion.chunk" && c.id === chunks[0].id)).toBe(true);
  });

  test("sampling: a seed repeats, n gives n choices, temperature > 0 differs from greedy", async () => {
    const ask = (seed: number) => client.completions.create({ model: "tiny", prompt: "Once", max_tokens: 20, temperature: 1.5, seed, n: 3, logprobs: 0 });
    const [a, b, c] = await Promise.all([ask(1), ask(1), ask(2)]);
    expect(a.choices.map((x) => x.index)).toEqual([0, 1, 2]);
    expect(a.choices.map((x) => x.text)).toEqual(b.choices.map((x) => x.text));
    expect(a.choices.map((x) => x.text)).not.toEqual(c.choices.map((x) => x.text));
    expect(new Set(a.choices.map((x) => x.text)).size).toBeGreaterThan(1); // choices use different streams
    const tokens = a.choices.map((x) => x.logprobs!.tokens!.length); // one entry per generated token
    expect(tokens.every((t) => t >= 1 && t <= 20)).toBe(true);
    expect(a.usage!.completion_tokens).toBe(tokens.reduce((s, t) => s + t, 0));
  });

  test("stop strings cut the text (finish_reason stop)", async () => {
    const whole = await client.completions.create({ model: "tiny", prompt: "stop test", max_tokens: 20, temperature: 0 });
    const text = whole.choices[0].text;
    const stop = text.slice(4, 6);
    const r = await client.completions.create({ model: "tiny", prompt: "stop test", max_tokens: 20, temperature: 0, stop: [stop] });
    expect(r.choices[0].text).toBe(text.slice(0, text.indexOf(stop)));
    expect(r.choices[0].finish_reason).toBe("stop");
  });

  test("logprobs: completions report the chosen token's log-probability and the top alternatives", async () => {
    const r = await client.completions.create({ model: "tiny", prompt: "log", max_tokens: 6, temperature: 0, logprobs: 3 });
    const lp = r.choices[0].logprobs!;
    expect(lp.tokens!.length).toBe(6);
    expect(lp.tokens!.join("")).toBe(r.choices[0].text);
    for (const [i, top] of lp.top_logprobs!.entries()) {
      const values = Object.values(top);
      expect(values.length).toBeLessThanOrEqual(3);
      expect(Math.max(...values)).toBeCloseTo(lp.token_logprobs![i], 10); // greedy picks the most likely
      expect(values.every((v) => v < 0)).toBe(true);
    }
    const chat = await client.chat.completions.create({ model: "tiny", messages: [{ role: "user", content: "x" }], max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 2 });
    const content = chat.choices[0].logprobs!.content!;
    expect(content.length).toBe(4);
    expect(content.every((c) => c.top_logprobs.length === 2 && c.top_logprobs[0].logprob >= c.top_logprobs[1].logprob)).toBe(true);
  });

  test("/metrics: Prometheus text with request, token, queue, batch and latency figures", async () => {
    const text = await (await fetch(`${served.base}/metrics`)).text();
    const value = (line: string) => Number(new RegExp(`^${line.replace(/[{}"/.+]/g, "\\$&")} (\\S+)$`, "m").exec(text)?.[1]);
    expect(value('kiln_requests_total{endpoint="/v1/completions",status="200"}')).toBeGreaterThan(10);
    expect(value("kiln_generation_tokens_total")).toBeGreaterThan(100);
    expect(value("kiln_prompt_tokens_total")).toBeGreaterThan(10);
    expect(value("kiln_queue_depth")).toBe(0);
    expect(value("kiln_running_sequences")).toBe(0);
    expect(value("kiln_time_to_first_token_seconds_count")).toBeGreaterThan(10);
    expect(value("kiln_decode_step_seconds_count")).toBe(value("kiln_batch_size_count"));
    expect(value("kiln_backend_allocated_bytes")).toBeGreaterThan(0);
    expect(text).toMatch(/^# TYPE kiln_request_duration_seconds histogram$/m);
  });

  test("errors come back as OpenAI errors naming the field", async () => {
    const err = async (p: Promise<unknown>) => p.then(() => null, (e) => e as InstanceType<typeof OpenAI.APIError>);
    const a = await err(client.completions.create({ model: "tiny", prompt: "x", max_tokens: 1000 }));
    expect(a?.status).toBe(400);
    expect(a?.param).toBe("max_tokens");
    expect(a?.message).toMatch(/maximum context length is 256/);
    const b = await err(client.completions.create({ model: "gpt-4", prompt: "x" }));
    expect([b?.status, b?.param, b?.code]).toEqual([400, "model", "model_not_found"]);
    const c = await err(client.completions.create({ model: "tiny", prompt: "x", temperature: "hot" as unknown as number }));
    expect([c?.status, c?.param]).toEqual([400, "temperature"]);
  });
});
