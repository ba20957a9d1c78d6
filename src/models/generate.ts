// Text generation from a causal language model: the prompt goes through the model in one batched
// pass that fills a KV cache (prefill), then one token per step (decode), reading back only the last
// position's logits. Tokens are chosen on the host in float64 (sampling.ts: repetition penalty,
// temperature, top-k, top-p, seeded draws); text comes out whole (detokenizer.ts), as a result or
// an async iterator of pieces; stop tokens and stop strings end it as HF does. Each step runs in a
// memory scope, so decoding does not grow device memory. A call changes nothing it shares with
// other calls: the model runs in eval mode for this call only (withTraining, the model's flag is
// not written), and draws come from the call's own Rng, never the global one — so concurrent
// generations on one model (a server's requests) give what they would give one after the other.
// Reference: HF transformers GenerationMixin.generate (greedy / sample, generation_config.json defaults).

import { z } from "zod";
import type { Tensor } from "../tensor/tensor.ts";
import type { Backend } from "../backend/backend.ts";
import type { Tokenizer } from "../data/tokenizer.ts";
import type { KVCache } from "./kv_cache.ts";
import { fromArray } from "../tensor/tensor.ts";
import { scope } from "../tensor/memory.ts";
import { noGrad } from "../autograd/tape.ts";
import { Rng, randomSeed } from "../tensor/random.ts";
import { withTraining } from "../tensor/mode.ts";
import { checkParams, pickToken, type SamplingParams } from "./sampling.ts";
import { StreamingDetokenizer } from "./detokenizer.ts";

/** What generation needs of a model: GPT and Llama both fit. */
export interface CausalLM {
  /** logits [B, T, V] for ids [B, T] (i32); with a cache, the ids continue the cached positions;
   *  logitsToKeep k > 0 asks for the last k positions only ([B, k, V]; a model may ignore it) */
  forward(ids: Tensor, opts?: { cache?: KVCache; logitsToKeep?: number }): Tensor;
  /** an empty KV cache; models without one are decoded by full recompute */
  newCache?(batch: number, maxLength: number): KVCache;
  readonly config: { blockSize: number; vocabSize: number; eosTokenId?: number | number[] | null };
  parameters(): Tensor[];
}

/** The generation_config.json fields generation reads (HF names; others pass through unchecked). */
export const GenerationConfigSchema = z.object({
  do_sample: z.boolean().optional(),
  temperature: z.number().min(0).optional(),
  top_k: z.number().int().min(0).optional(),
  top_p: z.number().gt(0).max(1).optional(),
  repetition_penalty: z.number().gt(0).optional(),
  eos_token_id: z.union([z.number().int(), z.array(z.number().int())]).nullish(),
  max_new_tokens: z.number().int().positive().optional(),
  max_length: z.number().int().positive().optional(),
}).loose();

export interface GenerateOptions {
  /** tokens to generate at most (default: generation config max_new_tokens, else max_length − prompt, else 128) */
  maxNewTokens?: number;
  /** sample (true) or take the argmax (false). Default: false, unless temperature > 0, topK or topP is given, or the generation config says do_sample */
  doSample?: boolean;
  /** 0 = greedy; default: generation config temperature, else 1 when sampling */
  temperature?: number;
  /** keep the k most likely tokens; 0 = off (default: generation config top_k, else 50 as HF) */
  topK?: number;
  /** nucleus sampling threshold; 1 = off (default: generation config top_p, else 1) */
  topP?: number;
  /** HF repetition penalty over prompt + generated tokens; 1 = off (default: generation config, else 1) */
  repetitionPenalty?: number;
  /** ids that end generation; not part of the text (default: generation config eos_token_id, else the tokenizer's, else the model config's) */
  stopTokens?: readonly number[];
  /** strings that end generation; the text is cut before the first one */
  stopStrings?: readonly string[];
  /** seed for sampling (same seed, same text); or pass an rng. Neither: a fresh random seed (result.seed), never the global RNG */
  seed?: number;
  rng?: Rng;
  /** decode with a KV cache (default true); false recomputes the whole context each step */
  useCache?: boolean;
  /** a parsed generation_config.json whose fields give the defaults above */
  generationConfig?: unknown;
  /** leave special tokens out of the text (default true) */
  skipSpecialTokens?: boolean;
  /** a string prompt is encoded with the tokenizer's special tokens (BOS...) unless false (default true) */
  addSpecialTokens?: boolean;
}

export interface GenerateResult {
  /** the generated text (no stop token, cut before a stop string; "" without a tokenizer) */
  text: string;
  /** the generated ids, as HF returns them: a final stop token included */
  tokens: number[];
  /** the prompt ids (a prompt longer than blockSize is fed as its last blockSize ids) */
  promptTokens: number[];
  /** "stop": a stop token or stop string ended it; "length": maxNewTokens were generated */
  finishReason: "stop" | "length";
  /** the stop token id or stop string that ended generation */
  stoppedBy?: number | string;
  /** the sampling seed (the one given, or the random one drawn when neither seed nor rng was); absent with an rng */
  seed?: number;
  timings: GenerateTimings;
}

export interface GenerateTimings {
  /** prompt tokens in the prefill pass and its time (forward + reading back the last logits) */
  prefillTokens: number;
  prefillMs: number;
  /** single-token forward passes after the prefill, and the time from prefill end to the finish */
  decodeTokens: number;
  decodeMs: number;
}

/**
 * Continues `prompt` (text, with a tokenizer, or ids) and returns the whole result.
 * @example (await generate(model, tokenizer, "Once upon a time", { maxNewTokens: 32, temperature: 0.8, seed: 1 })).text
 */
export async function generate(model: CausalLM, tokenizer: Tokenizer | null, prompt: string | readonly number[], options: GenerateOptions = {}): Promise<GenerateResult> {
  const it = steps(model, tokenizer, prompt, options);
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}

/**
 * The generated text as it becomes final, piece by piece (pieces concatenate to generate()'s text).
 * Breaking out of the loop ends generation and frees the cache.
 * @example for await (const piece of stream(model, tokenizer, "Hello")) process.stdout.write(piece);
 */
export async function* stream(model: CausalLM, tokenizer: Tokenizer, prompt: string | readonly number[], options: GenerateOptions = {}): AsyncGenerator<string, GenerateResult> {
  if (!tokenizer) throw new Error("[generate] stream() needs a tokenizer; use streamTokens() for ids");
  const it = steps(model, tokenizer, prompt, options);
  try {
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
      if (r.value.piece) yield r.value.piece;
    }
  } finally {
    await it.return(undefined as never); // the consumer broke off: end the loop, free the cache
  }
}

/** The generated ids as they are chosen (a final stop token included). */
export async function* streamTokens(model: CausalLM, tokenizer: Tokenizer | null, prompt: string | readonly number[], options: GenerateOptions = {}): AsyncGenerator<number, GenerateResult> {
  const it = steps(model, tokenizer, prompt, options);
  try {
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
      if (r.value.token !== undefined) yield r.value.token;
    }
  } finally {
    await it.return(undefined as never);
  }
}

/** Options with every default filled in (the generation config's, then kiln's). */
export interface ResolvedOptions {
  maxNewTokens: number;
  sampling: SamplingParams;
  stopTokens: number[];
  stopStrings: string[];
  rng: Rng;
  /** the seed rng was made from (undefined when the caller passed an rng) */
  seed?: number;
  useCache: boolean;
  skipSpecialTokens: boolean;
  addSpecialTokens: boolean;
}

/** Fills in defaults: explicit options, then generation_config.json, then HF's defaults. */
export function resolveOptions(options: GenerateOptions, promptLength: number, model?: Pick<CausalLM, "config">, tokenizer?: Tokenizer | null): ResolvedOptions {
  const g = parseGenerationConfig(options.generationConfig ?? {});
  const o = options;
  const doSample = o.doSample ?? (o.temperature !== undefined ? o.temperature > 0 : o.topK !== undefined || o.topP !== undefined || (g.do_sample ?? false));
  const temperature = doSample ? (o.temperature ?? g.temperature ?? 1) : 0;
  const maxNewTokens = o.maxNewTokens ?? g.max_new_tokens ?? (g.max_length !== undefined ? Math.max(g.max_length - promptLength, 0) : 128);
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) throw new Error(`[generate] maxNewTokens must be an integer >= 0, got ${maxNewTokens}`);
  const eos = g.eos_token_id ?? tokenizer?.eosTokenId ?? model?.config.eosTokenId ?? [];
  const stopTokens = o.stopTokens ? [...o.stopTokens] : Array.isArray(eos) ? [...eos] : [eos];
  const stopStrings = [...(o.stopStrings ?? [])];
  if (stopStrings.length > 0 && !tokenizer) throw new Error("[generate] stopStrings need a tokenizer");
  if (o.seed !== undefined && o.rng) throw new Error("[generate] pass seed or rng, not both");
  const sampling: SamplingParams = {
    temperature,
    topK: o.topK ?? g.top_k ?? 50,
    topP: o.topP ?? g.top_p ?? 1,
    repetitionPenalty: o.repetitionPenalty ?? g.repetition_penalty ?? 1,
  };
  checkParams(sampling);
  const seed = o.rng ? undefined : (o.seed ?? randomSeed());
  return {
    maxNewTokens,
    sampling,
    stopTokens,
    stopStrings,
    rng: o.rng ?? new Rng(seed!),
    seed,
    useCache: o.useCache ?? true,
    skipSpecialTokens: o.skipSpecialTokens ?? true,
    addSpecialTokens: o.addSpecialTokens ?? true,
  };
}

/** Validates a generation_config.json object (HF field names), naming the bad field. */
export function parseGenerationConfig(json: unknown): z.infer<typeof GenerationConfigSchema> {
  const r = GenerationConfigSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = issue.path.join(".");
    const value = issue.path.reduce<unknown>((o, k) => (o as Record<PropertyKey, unknown>)?.[k as PropertyKey], json);
    throw new Error(`[generate] generation config field ${field || "(root)"} = ${JSON.stringify(value)}: ${issue.message}`);
  }
  return r.data;
}

/**
 * Continues token ids by sampling and returns only the new ids — the training CLI's end-of-run
 * sample. No stop tokens; topK undefined means no top-k filter; no rng: a fresh random seed.
 */
export async function sample(model: CausalLM, prompt: readonly number[], { maxNewTokens, temperature = 1, topK, rng = new Rng(randomSeed()) }: { maxNewTokens: number; temperature?: number; topK?: number; rng?: Rng }): Promise<number[]> {
  const r = await generate(model, null, prompt.length > 0 ? prompt : [0], { maxNewTokens, temperature, topK: topK ?? 0, rng, stopTokens: [] });
  return r.tokens;
}

// ---- the loop ----

interface Step {
  /** the chosen id (absent on the final flush of held-back text) */
  token?: number;
  piece: string;
}

async function* steps(model: CausalLM, tokenizer: Tokenizer | null, prompt: string | readonly number[], options: GenerateOptions): AsyncGenerator<Step, GenerateResult> {
  let promptIds: number[];
  if (typeof prompt === "string") {
    if (!tokenizer) throw new Error("[generate] a text prompt needs a tokenizer (or pass token ids)");
    promptIds = tokenizer.encode(prompt, { addSpecialTokens: options.addSpecialTokens ?? true });
  } else {
    promptIds = [...prompt];
  }
  if (promptIds.length === 0 && tokenizer?.bosTokenId !== undefined) promptIds = [tokenizer.bosTokenId];
  if (promptIds.length === 0) throw new Error("[generate] empty prompt (and no BOS token to start from)");
  const opts = resolveOptions(options, promptIds.length, model, tokenizer);
  const { blockSize, vocabSize } = model.config;
  for (const id of promptIds) {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new Error(`[generate] prompt token ${id} is outside the vocabulary [0, ${vocabSize})`);
  }
  const backend = model.parameters()[0]?.backend;
  if (!backend) throw new Error("[generate] the model has no parameters");
  const stopTokens = new Set(opts.stopTokens);
  const detok = tokenizer
    ? new StreamingDetokenizer(tokenizer, { anchor: promptIds[promptIds.length - 1], stopStrings: opts.stopStrings, skipSpecialTokens: opts.skipSpecialTokens })
    : null;

  const context = [...promptIds]; // everything the model has seen (repetition penalty, recompute)
  const tokens: number[] = [];
  let finishReason: GenerateResult["finishReason"] = "length";
  let stoppedBy: number | string | undefined;
  const timings: GenerateTimings = { prefillTokens: 0, prefillMs: 0, decodeTokens: 0, decodeMs: 0 };
  let cache: KVCache | null = null;
  try {
    if (opts.maxNewTokens === 0) return finish();
    // the cache covers what will be fed: the prompt (cropped to blockSize) and all but the last new token
    const window = (ids: number[]) => ids.slice(-blockSize);
    const first = window(promptIds);
    if (opts.useCache && model.newCache) cache = model.newCache(1, Math.min(blockSize, first.length + opts.maxNewTokens - 1));
    const t0 = performance.now();
    let logits = await lastLogits(model, backend, [first], cache);
    timings.prefillTokens = first.length;
    timings.prefillMs = performance.now() - t0;
    const t1 = performance.now();
    for (let i = 0; ; i++) {
      const next = pickToken(logits, opts.sampling, context, opts.rng);
      tokens.push(next);
      context.push(next);
      if (stopTokens.has(next)) {
        finishReason = "stop";
        stoppedBy = next;
        yield { token: next, piece: "" };
        break;
      }
      const piece = detok ? detok.push(next) : "";
      yield { token: next, piece };
      if (detok?.stopped) {
        finishReason = "stop";
        stoppedBy = detok.stopString;
        break;
      }
      if (i + 1 >= opts.maxNewTokens) break;
      if (cache && cache.length < cache.maxLength) {
        logits = await lastLogits(model, backend, [[next]], cache); // decode: one token against the cache
      } else {
        // no cache, or the context outgrew blockSize: recompute over the last blockSize tokens
        if (cache) cache.dispose(), (cache = null);
        logits = await lastLogits(model, backend, [window(context)], null);
      }
      timings.decodeTokens++;
    }
    timings.decodeMs = performance.now() - t1;
    const rest = detok?.finish() ?? "";
    if (rest) yield { piece: rest };
    return finish();
  } finally {
    cache?.dispose();
  }

  function finish(): GenerateResult {
    return { text: detok?.text ?? "", tokens, promptTokens: promptIds, finishReason, stoppedBy, seed: opts.seed, timings };
  }
}

/** One forward pass in eval mode and its own memory scope; reads back only the last position's logits [V]. */
/** The last position's logits of each row ([B·V], row after row): one eval-mode, gradient-free forward of
 *  rows [B, T] in its own memory scope. The serving batcher decodes through it too (with its batched cache). */
export async function lastLogits<C>(
  model: { forward(ids: Tensor, opts?: { cache?: C; logitsToKeep?: number }): Tensor },
  backend: Backend,
  rows: number[][],
  cache: C | null,
): Promise<Float32Array> {
  const last = withTraining(false, () => scope(() =>
    noGrad(() => {
      const x = fromArray(Int32Array.from(rows.flat()), [rows.length, rows[0].length], { dtype: "i32", backend }); // [B, T]
      const logits = model.forward(x, { cache: cache ?? undefined, logitsToKeep: 1 }); // [B, 1, V]
      const T = logits.shape[1]; // a model that ignores logitsToKeep returns every position
      return T === 1 ? logits : logits.narrow(1, T - 1, 1);
    }),
  ));
  try {
    return (await last.data()) as Float32Array;
  } finally {
    last.dispose();
  }
}
