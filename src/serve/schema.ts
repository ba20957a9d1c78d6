// The request bodies of the OpenAI-compatible endpoints as zod schemas: OpenAI's field names, types
// and ranges, plus vLLM's extensions (top_k, repetition_penalty). Unknown fields are ignored, as
// vLLM does. A failed parse becomes a 400 that names the field (ApiError.fromZod).
// Reference: OpenAI API reference (Completions, Chat Completions); vLLM's protocol.py.

import { z } from "zod";

const stop = z.union([z.string(), z.array(z.string()).max(4)]).nullish();
const logitBias = z.record(z.string().regex(/^\d+$/, "keys must be token ids"), z.number().min(-100).max(100)).nullish();

/** Sampling fields both endpoints share. */
const common = {
  model: z.string().min(1),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  /** vLLM: keep the k most likely tokens; 0 or −1 = off */
  top_k: z.number().int().min(-1).nullish(),
  n: z.number().int().min(1).max(16).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  stop,
  seed: z.number().int().nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  /** vLLM / HF: > 1 discourages every token already in prompt or output */
  repetition_penalty: z.number().gt(0).max(10).nullish(),
  logit_bias: logitBias,
  max_tokens: z.number().int().min(1).nullish(),
  user: z.string().nullish(),
};

const tokenIds = z.array(z.number().int().min(0)).min(1);

export const CompletionRequest = z.object({
  ...common,
  prompt: z.union([z.string(), z.array(z.string()).min(1), tokenIds, z.array(tokenIds).min(1)]),
  /** the chosen token's log-probability and this many alternatives per position */
  logprobs: z.number().int().min(0).max(20).nullish(),
  echo: z.literal(false).nullish(),
  best_of: z.literal(1).nullish(),
  suffix: z.null().optional(),
});
export type CompletionRequest = z.infer<typeof CompletionRequest>;

const textPart = z.object({ type: z.literal("text"), text: z.string() });
export const ChatMessage = z.object({
  role: z.enum(["system", "developer", "user", "assistant", "tool"]),
  content: z.union([z.string(), z.array(textPart), z.null()]),
  name: z.string().optional(),
}).loose();

export const ChatCompletionRequest = z.object({
  ...common,
  messages: z.array(ChatMessage).min(1),
  max_completion_tokens: z.number().int().min(1).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;

/** An error in OpenAI's shape: { error: { message, type, param, code } } with its HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly type = status === 429 ? "rate_limit_exceeded" : status >= 500 ? "server_error" : "invalid_request_error",
    readonly code: string | null = null,
  ) {
    super(message);
  }

  /** A 400 for the first issue of a failed parse, naming the field and what was wrong. */
  static fromZod(error: z.ZodError, body: unknown): ApiError {
    const issue = error.issues[0];
    const param = issue.path.map(String).join(".") || null;
    const value = issue.path.reduce<unknown>((o, k) => (o as Record<PropertyKey, unknown>)?.[k as PropertyKey], body);
    const got = value === undefined ? "missing" : `got ${JSON.stringify(value)?.slice(0, 80)}`;
    return new ApiError(400, `${param ?? "body"}: ${issue.message} (${got})`, param);
  }

  toJSON(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}
