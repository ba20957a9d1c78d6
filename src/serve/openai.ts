// POST /v1/completions and /v1/chat/completions: a validated body becomes sequences for the model's
// batcher (n per prompt), and their tokens come back as one JSON response or as server-sent events
// in OpenAI's chunk format ending with `data: [DONE]`. A request whose client goes away, or that
// outlives its timeout, aborts its sequences (they leave the batch, their KV caches are freed).
// Not here: routing, auth or body limits (server.ts), the decode loop (batcher.ts).
// Reference: OpenAI API reference (completion / chat.completion / chat.completion.chunk objects).

import type { Tokenizer } from "../data/tokenizer.ts";
import type { ChatTemplate } from "../data/chat_template.ts";
import { Rng } from "../tensor/random.ts";
import { Batcher, QueueFullError, type SequenceRequest, type SequenceResult, type TokenEvent } from "./batcher.ts";
import type { TokenLogprob } from "./token_choice.ts";
import { ApiError, ChatCompletionRequest, CompletionRequest } from "./schema.ts";

/** One model the server answers for (a base model, or the same weights with an adapter fused). */
export interface ServedModel {
  /** the `model` field requests use */
  name: string;
  batcher: Batcher;
  tokenizer: Tokenizer;
  chatTemplate: ChatTemplate | null;
  /** defaults for sampling (temperature, top_p, top_k, repetition_penalty) and the stop ids */
  generationConfig?: { temperature?: number; top_p?: number; top_k?: number; repetition_penalty?: number; eos_token_id?: number | number[] | null };
  /** the model config's eos ids, used when neither generation config nor tokenizer has one */
  eosTokenId?: number | number[] | null;
  created: number;
}

export interface RequestContext {
  /** aborts when the client disconnects (Request.signal) */
  signal: AbortSignal;
  timeoutMs: number;
}

type Kind = "completion" | "chat";

/** One sequence the request asked for: its choice index and prompt. */
interface Planned {
  index: number;
  promptIndex: number;
  req: SequenceRequest;
}

export async function handleCompletion(body: unknown, find: (name: string) => ServedModel, ctx: RequestContext): Promise<Response> {
  const r = CompletionRequest.safeParse(body);
  if (!r.success) throw ApiError.fromZod(r.error, body);
  const b = r.data;
  const served = find(b.model);
  const p = b.prompt;
  const prompts: number[][] = typeof p === "string" ? [encode(served, p, true)]
    : typeof p[0] === "number" ? [p as number[]]
    : typeof p[0] === "string" ? (p as string[]).map((s) => encode(served, s, true))
    : (p as number[][]);
  return run("completion", served, b, prompts, b.max_tokens ?? 16, b.logprobs ?? null, ctx);
}

export async function handleChat(body: unknown, find: (name: string) => ServedModel, ctx: RequestContext): Promise<Response> {
  const r = ChatCompletionRequest.safeParse(body);
  if (!r.success) throw ApiError.fromZod(r.error, body);
  const b = r.data;
  const served = find(b.model);
  if (!served.chatTemplate) throw new ApiError(400, `model ${b.model} has no chat template (tokenizer_config.json chat_template or chat_template.jinja): use /v1/completions`, "model");
  const messages = b.messages.map((m) => ({ ...m, content: Array.isArray(m.content) ? m.content.map((part) => part.text).join("") : (m.content ?? "") }));
  let text: string;
  try {
    text = served.chatTemplate.apply(messages, { addGenerationPrompt: true });
  } catch (e) {
    throw new ApiError(400, `messages: ${(e as Error).message}`, "messages");
  }
  const ids = encode(served, text, false); // the template writes BOS and friends itself
  const ctxLen = served.batcher.contextLength;
  const maxTokens = b.max_completion_tokens ?? b.max_tokens ?? Math.max(ctxLen - ids.length, 1);
  const logprobs = b.logprobs ? (b.top_logprobs ?? 0) : null;
  return run("chat", served, b, [ids], maxTokens, logprobs, ctx);
}

function encode(served: ServedModel, text: string, addSpecialTokens: boolean): number[] {
  const ids = served.tokenizer.encode(text, { addSpecialTokens });
  if (ids.length === 0 && served.tokenizer.bosTokenId !== undefined) return [served.tokenizer.bosTokenId];
  return ids;
}

type Body = CompletionRequest | ChatCompletionRequest;

async function run(kind: Kind, served: ServedModel, b: Body, prompts: number[][], maxTokens: number, logprobs: number | null, ctx: RequestContext): Promise<Response> {
  const field = kind === "chat" ? "messages" : "prompt";
  const ctxLen = served.batcher.contextLength;
  const vocab = served.tokenizer.vocabSize;
  for (const ids of prompts) {
    if (ids.length === 0) throw new ApiError(400, `${field}: empty prompt`, field);
    const bad = ids.find((id) => id >= vocab);
    if (bad !== undefined) throw new ApiError(400, `${field}: token id ${bad} is outside the vocabulary [0, ${vocab})`, field);
    if (ids.length >= ctxLen) throw new ApiError(400, `${field}: this model's maximum context length is ${ctxLen} tokens, and the prompt has ${ids.length}`, field);
    if (ids.length + maxTokens > ctxLen) {
      const name = kind === "chat" && "max_completion_tokens" in b && b.max_completion_tokens != null ? "max_completion_tokens" : "max_tokens";
      throw new ApiError(400, `${name}: this model's maximum context length is ${ctxLen} tokens; you asked for ${ids.length + maxTokens} (${ids.length} in the prompt, ${maxTokens} to generate)`, name);
    }
  }
  const abort = new AbortController();
  const onClientGone = () => abort.abort(new Error("client disconnected"));
  ctx.signal.addEventListener("abort", onClientGone, { once: true });
  const timer = setTimeout(() => abort.abort(new TimeoutError()), ctx.timeoutMs);
  const cleanup = () => {
    clearTimeout(timer);
    ctx.signal.removeEventListener("abort", onClientGone);
  };
  const n = b.n ?? 1;
  const planned: Planned[] = prompts.flatMap((ids, promptIndex) =>
    Array.from({ length: n }, (_, i) => ({ index: promptIndex * n + i, promptIndex, req: sequenceRequest(served, b, ids, maxTokens, logprobs, promptIndex * n + i, abort.signal) })),
  );
  const id = `${kind === "chat" ? "chatcmpl" : "cmpl"}-${crypto.randomUUID().replaceAll("-", "")}`;
  const created = Math.floor(Date.now() / 1000);
  const head = { id, created, model: served.name };
  try {
    if (b.stream) return stream(kind, served, planned, head, prompts, b.stream_options?.include_usage ?? false, abort, cleanup);
    const results = await Promise.all(submit(served, planned.map((p) => ({ req: p.req }))));
    if (abort.signal.reason instanceof TimeoutError) throw new ApiError(504, `the request took longer than ${ctx.timeoutMs} ms`, null, "timeout");
    const choices = results.map((res, i) => choice(kind, served, res, planned[i].index));
    return Response.json({ ...head, object: kind === "chat" ? "chat.completion" : "text_completion", choices, usage: usage(prompts, results) });
  } finally {
    if (!b.stream) cleanup();
  }
}

class TimeoutError extends Error {}

function submit(served: ServedModel, reqs: Parameters<Batcher["submit"]>[0]) {
  try {
    return served.batcher.submit(reqs);
  } catch (e) {
    if (e instanceof QueueFullError) throw new ApiError(429, `server busy: ${e.message}; retry later`);
    throw e;
  }
}

function sequenceRequest(served: ServedModel, b: Body, promptIds: number[], maxTokens: number, logprobs: number | null, index: number, signal: AbortSignal): SequenceRequest {
  const g = served.generationConfig ?? {};
  const temperature = b.temperature ?? g.temperature ?? 1;
  const topK = b.top_k ?? g.top_k ?? 0;
  const eos = g.eos_token_id ?? served.tokenizer.eosTokenId ?? served.eosTokenId ?? [];
  const seed = b.seed != null ? b.seed + index : crypto.getRandomValues(new Uint32Array(1))[0];
  return {
    promptIds,
    maxTokens,
    sampling: { temperature, topK: topK < 0 ? 0 : topK, topP: b.top_p ?? g.top_p ?? 1, repetitionPenalty: b.repetition_penalty ?? g.repetition_penalty ?? 1 },
    presencePenalty: b.presence_penalty ?? 0,
    frequencyPenalty: b.frequency_penalty ?? 0,
    logitBias: new Map(Object.entries(b.logit_bias ?? {}).map(([k, v]) => [Number(k), v])),
    logprobs,
    rng: new Rng(seed),
    stopTokens: Array.isArray(eos) ? eos : [eos],
    stopStrings: b.stop == null ? [] : typeof b.stop === "string" ? [b.stop] : b.stop,
    signal,
  };
}

function usage(prompts: number[][], results: SequenceResult[]) {
  const prompt = prompts.reduce((s, p) => s + p.length, 0);
  const completion = results.reduce((s, r) => s + r.tokens.length, 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** The finish_reason OpenAI clients know ("cancelled" only reaches a client that left). */
const finishReason = (r: SequenceResult) => (r.finishReason === "cancelled" ? "length" : r.finishReason);

function choice(kind: Kind, served: ServedModel, r: SequenceResult, index: number) {
  const lp = r.logprobs;
  if (kind === "chat") {
    return { index, message: { role: "assistant", content: r.text }, logprobs: lp ? chatLogprobs(served, lp) : null, finish_reason: finishReason(r) };
  }
  return { index, text: r.text, logprobs: lp ? completionLogprobs(served, lp, 0) : null, finish_reason: finishReason(r) };
}

const tokenText = (served: ServedModel, id: number) => served.tokenizer.decode([id], { skipSpecialTokens: false });

function chatLogprobs(served: ServedModel, lps: TokenLogprob[]) {
  const entry = (token: number, logprob: number) => {
    const text = tokenText(served, token);
    return { token: text, logprob, bytes: [...new TextEncoder().encode(text)] };
  };
  return { content: lps.map((lp) => ({ ...entry(lp.token, lp.logprob), top_logprobs: lp.top.map((t) => entry(t.token, t.logprob)) })) };
}

function completionLogprobs(served: ServedModel, lps: TokenLogprob[], offset: number) {
  const tokens = lps.map((lp) => tokenText(served, lp.token));
  const textOffset: number[] = [];
  for (const t of tokens) textOffset.push(offset), (offset += t.length);
  return {
    tokens,
    token_logprobs: lps.map((lp) => lp.logprob),
    top_logprobs: lps.map((lp) => Object.fromEntries(lp.top.map((t) => [tokenText(served, t.token), t.logprob]))),
    text_offset: textOffset,
  };
}

/** Server-sent events: a chunk per token per choice, a final chunk per choice, usage, [DONE]. */
function stream(kind: Kind, served: ServedModel, planned: Planned[], head: object, prompts: number[][], includeUsage: boolean, abort: AbortController, cleanup: () => void): Response {
  const object = kind === "chat" ? "chat.completion.chunk" : "text_completion";
  const enc = new TextEncoder();
  const offsets = planned.map(() => 0);
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let open = true;
  const send = (data: unknown) => {
    if (!open) return;
    try {
      controller.enqueue(enc.encode(`data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`));
    } catch {
      open = false; // the client went away mid-write: the abort takes the sequences out
    }
  };
  const chunk = (choices: unknown[], extra: object = {}) => send({ ...head, object, choices, ...(includeUsage ? { usage: null } : {}), ...extra });
  const delta = (i: number, piece: string, ev: TokenEvent | null, finish: string | null) => {
    const index = planned[i].index;
    if (kind === "chat") {
      const d = piece || finish === null ? { content: piece } : {};
      chunk([{ index, delta: d, logprobs: ev?.logprob ? chatLogprobs(served, [ev.logprob]) : null, finish_reason: finish }]);
    } else {
      const lp = ev?.logprob ? completionLogprobs(served, [ev.logprob], offsets[i]) : null;
      offsets[i] += piece.length;
      chunk([{ index, text: piece, logprobs: lp, finish_reason: finish }]);
    }
  };
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      if (kind === "chat") for (const p of planned) chunk([{ index: p.index, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }]);
    },
    cancel() {
      open = false;
      abort.abort(new Error("client disconnected"));
    },
  });
  let results: Promise<SequenceResult>[];
  try {
    // the sinks run from the decode loop, after this returns: the stream exists by then
    results = submit(served, planned.map((p, i) => ({
      req: p.req,
      sink: {
        onToken: (ev: TokenEvent) => void ((ev.piece || ev.logprob) && delta(i, ev.piece, ev, null)),
        onFinish: (rest: string, r: SequenceResult) => {
          if (rest) delta(i, rest, null, null);
          delta(i, "", null, finishReason(r));
        },
      },
    })));
  } catch (e) {
    cleanup();
    throw e; // nothing sent yet: the caller answers with the error (429...)
  }
  Promise.all(results)
    .then((rs) => {
      if (abort.signal.reason instanceof TimeoutError) send(new ApiError(504, "the request timed out", null, "timeout").toJSON());
      else if (includeUsage) send({ ...head, object, choices: [], usage: usage(prompts, rs) });
    })
    .catch((e) => send(new ApiError(500, `generation failed: ${(e as Error).message}`).toJSON()))
    .finally(() => {
      cleanup();
      send("[DONE]");
      if (open) controller.close();
      open = false;
    });
  return new Response(body, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" } });
}
