// What the server does with hostile or unlucky requests: bad JSON and bad fields (400 naming the
// field), oversized bodies (413, declared or streamed), a full queue (429 + Retry-After), a wrong
// API key (401), wrong routes and methods, timeouts (504), a client that disconnects mid-stream
// (its sequence leaves the batch and its KV slot is emptied and freed), and a model that throws (500 for that
// request, the next one is served). Plus a short mixed load: no 5xx, memory back to its warm value.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rm } from "node:fs/promises";
import type { KilnServer, ServerOptions } from "../../src/serve/server.ts";
import { startServer } from "./harness.ts";
import { loadServedModel, type LoadedModelEntry } from "../../src/serve/load.ts";
import { useBackend } from "../../src/tensor/tensor.ts";
import { generate } from "../../src/models/generate.ts";
import type { Backend } from "../../src/backend/backend.ts";
import { getBackend } from "../backends.ts";
import { makeTinyModel } from "./tiny_model.ts";

let dir: string;
let entry: LoadedModelEntry;
let backend: Backend;

beforeAll(async () => {
  backend = await getBackend("wasm");
  useBackend(backend);
  dir = await makeTinyModel();
  entry = await loadServedModel(dir, { name: "tiny" });
});

afterAll(async () => {
  entry.model.dispose();
  await rm(dir, { recursive: true, force: true });
});

/** A server on a free loopback port for the duration of fn. */
async function withServer(options: Partial<ServerOptions>, fn: (base: string, api: KilnServer) => Promise<void>): Promise<void> {
  const served = startServer({ models: [entry], ...options });
  try {
    await fn(served.base, served.api);
  } finally {
    await served.close();
  }
}

/** keeps a sequence going to max_tokens: the end-of-text id can never be drawn */
const NO_EOS = { logit_bias: { "299": -100 } };

const post = (base: string, path: string, body: unknown, init: RequestInit = {}) =>
  fetch(base + path, { method: "POST", body: typeof body === "string" || body instanceof ReadableStream ? body : JSON.stringify(body), headers: { "content-type": "application/json" }, ...init });

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await Bun.sleep(10);
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

describe("serve robustness", () => {
  test("400s name the field: bad JSON, wrong types, out-of-range values, missing fields, bad token ids", async () => {
    await withServer({}, async (base) => {
      const cases: [unknown, number, string | null, RegExp][] = [
        ["{not json", 400, null, /not valid JSON/],
        [{ model: "tiny" }, 400, "prompt", /prompt/],
        [{ model: "tiny", prompt: "x", n: 0 }, 400, "n", /n:/],
        [{ model: "tiny", prompt: "x", top_p: 0 }, 400, "top_p", /top_p/],
        [{ model: "tiny", prompt: "x", stop: ["a", "b", "c", "d", "e"] }, 400, "stop", /stop/],
        [{ model: "tiny", prompt: [5, 300] }, 400, "prompt", /outside the vocabulary \[0, 300\)/],
        [{ model: "tiny", prompt: "x", logit_bias: { abc: 1 } }, 400, "logit_bias.abc", /logit_bias/],
        [{ model: 7, prompt: "x" }, 400, "model", /model/],
      ];
      for (const [body, status, param, message] of cases) {
        const r = await post(base, "/v1/completions", body);
        const json = (await r.json()) as { error: { param: string | null; message: string; type: string } };
        expect([r.status, json.error.param], JSON.stringify(body)).toEqual([status, param]);
        expect(json.error.message).toMatch(message);
        expect(json.error.type).toBe("invalid_request_error");
      }
      const chat = await post(base, "/v1/chat/completions", { model: "tiny", messages: [{ role: "robot", content: "hi" }] });
      expect([chat.status, ((await chat.json()) as { error: { param: string } }).error.param]).toEqual([400, "messages.0.role"]);
    });
  });

  test("413 for a body over the limit, declared or streamed without a length", async () => {
    await withServer({ maxBodyBytes: 1000 }, async (base) => {
      const big = JSON.stringify({ model: "tiny", prompt: "x".repeat(2000) });
      expect((await post(base, "/v1/completions", big)).status).toBe(413);
      const chunked = new ReadableStream({
        start(c) {
          for (let i = 0; i < 5; i++) c.enqueue(new TextEncoder().encode(" ".repeat(400)));
          c.close();
        },
      });
      expect((await post(base, "/v1/completions", chunked)).status).toBe(413);
      expect((await post(base, "/v1/completions", { model: "tiny", prompt: "fine", max_tokens: 2 })).status).toBe(200);
    });
  });

  test("401 without the API key on /v1 (health and metrics stay open); 404 and 405", async () => {
    await withServer({ apiKey: "s3cret" }, async (base) => {
      expect((await fetch(base + "/v1/models")).status).toBe(401);
      expect((await fetch(base + "/v1/models", { headers: { authorization: "Bearer nope" } })).status).toBe(401);
      expect((await fetch(base + "/v1/models", { headers: { authorization: "Bearer s3cret" } })).status).toBe(200);
      expect((await fetch(base + "/health")).status).toBe(200);
      expect((await fetch(base + "/metrics")).status).toBe(200);
      const auth = { headers: { authorization: "Bearer s3cret" } };
      expect((await fetch(base + "/v1/nothing", auth)).status).toBe(404);
      expect((await fetch(base + "/v1/completions", auth)).status).toBe(405);
    });
  });

  test("429 with Retry-After when the queue is full; served again once it drains", async () => {
    await withServer({ maxBatch: 1, maxQueue: 0 }, async (base, api) => {
      const long = post(base, "/v1/completions", { model: "tiny", prompt: "busy", max_tokens: 200, temperature: 0, ...NO_EOS });
      await until(() => api.models[0].batcher.running === 1, "the first request to run");
      const r = await post(base, "/v1/completions", { model: "tiny", prompt: "me too", max_tokens: 2 });
      expect(r.status).toBe(429);
      expect(r.headers.get("retry-after")).toBe("1");
      expect((await long).status).toBe(200);
      expect((await post(base, "/v1/completions", { model: "tiny", prompt: "now", max_tokens: 2 })).status).toBe(200);
    });
  });

  test("a request past its timeout gets 504 and its sequence is dropped", async () => {
    await withServer({ requestTimeoutMs: 1 }, async (base, api) => {
      const r = await post(base, "/v1/completions", { model: "tiny", prompt: "slow", max_tokens: 250, ...NO_EOS });
      expect(r.status).toBe(504);
      expect(((await r.json()) as { error: { type: string } }).error.type).toBe("timeout");
      await until(() => api.models[0].batcher.running === 0, "the batch to empty");
    });
  });

  test("a client that disconnects mid-stream: its sequence leaves the batch and its KV slot is freed", async () => {
    await withServer({}, async (base, api) => {
      const warm = await post(base, "/v1/completions", { model: "tiny", prompt: "warm", max_tokens: 4 });
      await warm.text();
      const baseline = backend.stats().allocatedBytes;
      const abort = new AbortController();
      const r = await post(base, "/v1/completions", { model: "tiny", prompt: "bye", max_tokens: 240, stream: true, ...NO_EOS }, { signal: abort.signal });
      const reader = r.body!.getReader();
      await reader.read(); // the first chunk: the sequence is running, in a slot of the KV pool
      expect(api.models[0].batcher.running).toBe(1);
      expect(api.models[0].batcher.freeSlots).toBe(api.models[0].batcher.maxBatch - 1);
      abort.abort();
      await until(() => api.models[0].batcher.running === 0, "the cancelled sequence to leave");
      expect(api.models[0].batcher.freeSlots).toBe(api.models[0].batcher.maxBatch); // its slot emptied and back
      expect(backend.stats().allocatedBytes).toBe(baseline);
      expect(api.metrics.sequences.get({ reason: "cancelled" })).toBe(1);
      expect(api.metrics.generationTokens.get()).toBeLessThan(4 + 240);
    });
  });

  test("a model that throws fails that request with a 500; the server keeps serving", async () => {
    let fail = false;
    const m = entry.model;
    const flaky = {
      forward: (...args: Parameters<typeof m.forward>) => {
        if (fail) throw new Error("device lost");
        return m.forward(...args);
      },
      newCache: (b: number, n: number) => m.newCache(b, n),
      parameters: () => m.parameters(),
      config: m.config,
      training: false,
    };
    await withServer({ models: [{ ...entry, model: flaky }] }, async (base) => {
      fail = true;
      const bad = await post(base, "/v1/completions", { model: "tiny", prompt: "x", max_tokens: 3 });
      expect(bad.status).toBe(500);
      expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/device lost/);
      fail = false;
      expect((await post(base, "/v1/completions", { model: "tiny", prompt: "x", max_tokens: 3 })).status).toBe(200);
    });
  });

  test("a model a training loop holds in train mode (dropout 0.1) is served in eval mode, its flag untouched", async () => {
    const gpt2 = await loadServedModel(new URL("../fixtures/hf/gpt2/", import.meta.url).pathname, { name: "gpt2" });
    gpt2.model.train();
    await withServer({ models: [gpt2] }, async (base) => {
      for (const prompt of ["the cat", "hello"]) {
        const r = (await (await post(base, "/v1/completions", { model: "gpt2", prompt, max_tokens: 8, temperature: 0 })).json()) as { choices: { text: string }[] };
        const want = await generate(gpt2.model, gpt2.tokenizer, prompt, { maxNewTokens: 8, temperature: 0 }); // generate() runs in eval mode too
        expect(r.choices[0].text).toBe(want.text);
      }
    });
    expect(gpt2.model.training).toBe(true);
    gpt2.model.dispose();
  });

  test("mixed load (16 clients, ~3 s: plain, streaming, cancelled, malformed): no 5xx, every good request answered, memory back", async () => {
    await withServer({ maxBatch: 8, maxQueue: 64 }, async (base, api) => {
      await (await post(base, "/v1/completions", { model: "tiny", prompt: "warm", max_tokens: 4 })).text();
      const baseline = backend.stats().allocatedBytes;
      const statuses = new Map<number, number>();
      let answered = 0;
      let sent = 0;
      const end = performance.now() + 3000;
      const client = async (c: number) => {
        for (let i = 0; performance.now() < end; i++) {
          const kind = (c + i) % 4;
          sent++;
          if (kind === 3) {
            const r = await post(base, "/v1/completions", { model: "tiny", prompt: "x", max_tokens: -1 });
            statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
            await r.text();
            answered++;
            continue;
          }
          const abort = new AbortController();
          const r = await post(base, "/v1/completions", { model: "tiny", prompt: `client ${c} request ${i}`, max_tokens: 8 + (c % 8), stream: kind !== 0 }, { signal: abort.signal });
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          if (kind === 2) {
            await r.body!.getReader().read();
            abort.abort();
          } else {
            const text = await r.text();
            if (kind === 1) expect(text.endsWith("data: [DONE]\n\n")).toBe(true);
          }
          answered++;
        }
      };
      await Promise.all(Array.from({ length: 16 }, (_, c) => client(c)));
      expect([...statuses.keys()].filter((s) => s >= 500)).toEqual([]);
      expect(answered).toBe(sent);
      expect(statuses.get(200)! + (statuses.get(429) ?? 0) + statuses.get(400)!).toBe(sent);
      await until(() => api.models[0].batcher.running === 0 && api.models[0].batcher.queueDepth === 0, "the server to go idle");
      expect(backend.stats().allocatedBytes).toBe(baseline);
    });
  });
});
