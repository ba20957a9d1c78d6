// Continuous batching for one model: sequences wait in a bounded queue, join the running batch
// between decode steps (after a prefill of their prompt into a slot of the KV pool), and leave it
// as soon as they finish, are cancelled or time out (their slot is emptied and freed at once). Each
// decode step is ONE forward pass over every running sequence (a BatchedKVCache over their slots:
// one KV scatter, gather and attention per layer for the whole batch) and one read-back of the
// [B, V] logits; tokens are then chosen per sequence on the host.
// All model work runs on this one loop, so concurrent requests never interleave inside a forward.
// Not here: HTTP, JSON or the OpenAI shapes (openai.ts). Reference: Orca (OSDI '22) iteration-level
// scheduling; vLLM's scheduler (waiting / running queues).

import type { Tensor } from "../tensor/tensor.ts";
import type { Tokenizer } from "../data/tokenizer.ts";
import type { KVCache } from "../models/kv_cache.ts";
import { BatchedKVCache, type AnyKVCache } from "../models/batched_kv_cache.ts";
import { KVPool } from "../models/kv_pool.ts";
import { StreamingDetokenizer } from "../models/detokenizer.ts";
import { lastLogits } from "../models/generate.ts";
import { chooseToken, type TokenChoiceParams, type TokenLogprob } from "./token_choice.ts";
import type { ServerMetrics } from "./metrics.ts";

/** What the batcher needs of a model: a forward that takes a (batched) cache, and caches. */
export interface ServableModel {
  forward(ids: Tensor, opts?: { cache?: AnyKVCache; logitsToKeep?: number }): Tensor;
  newCache(batch: number, maxLength: number): KVCache;
  readonly config: { blockSize: number; vocabSize: number };
  parameters(): Tensor[];
}

export interface SequenceRequest extends TokenChoiceParams {
  promptIds: number[];
  /** tokens to generate at most (prompt + maxTokens must fit the context) */
  maxTokens: number;
  stopTokens: readonly number[];
  stopStrings: readonly string[];
  /** aborting it (client gone, timeout) takes the sequence out before the next step */
  signal?: AbortSignal;
}

export interface TokenEvent {
  token: number;
  /** text that became final with this token ("" while held back or for a stop token) */
  piece: string;
  logprob?: TokenLogprob;
}

export type FinishReason = "stop" | "length" | "cancelled";

export interface SequenceResult {
  text: string;
  tokens: number[];
  promptTokens: number;
  finishReason: FinishReason;
  /** ms from submit to the first token (NaN if none came) */
  ttftMs: number;
  /** per generated token, when the request asked for log-probabilities */
  logprobs?: TokenLogprob[];
}

export interface SequenceSink {
  onToken?(ev: TokenEvent): void;
  /** trailing held-back text, once the sequence has finished */
  onFinish?(piece: string, result: SequenceResult): void;
}

export class QueueFullError extends Error {}

interface Sequence {
  req: SequenceRequest;
  sink: SequenceSink;
  /** its slot in the KV pool while it runs */
  slot: number | null;
  context: number[];
  tokens: number[];
  counts: Map<number, number>;
  logprobs: TokenLogprob[];
  detok: StreamingDetokenizer;
  stopTokens: Set<number>;
  submittedAt: number;
  ttftMs: number;
  resolve(r: SequenceResult): void;
  reject(e: unknown): void;
  done: boolean;
}

export interface BatcherOptions {
  /** the most sequences decoded together (default 8) */
  maxBatch?: number;
  /** the most sequences waiting for a slot; beyond it submit() throws QueueFullError (default 64) */
  maxQueue?: number;
  /** positions per sequence (prompt + generated), at most the model's context (default: the context).
   *  The KV pool holds maxBatch × this many positions, allocated on first use. */
  maxModelLen?: number;
  metrics?: ServerMetrics;
}

export class Batcher {
  readonly maxBatch: number;
  readonly maxQueue: number;
  /** positions per sequence: the model's context or less (maxModelLen) */
  readonly contextLength: number;
  readonly #model: ServableModel;
  readonly #tokenizer: Tokenizer;
  readonly #metrics?: ServerMetrics;
  readonly #waiting: Sequence[] = [];
  #running: Sequence[] = [];
  /** the decode loop runs (it stops when there is no work; submit starts it again) */
  #active = false;
  #loop: Promise<void> = Promise.resolve();
  /** maxBatch slots of the model's context, made on first use, freed by close() */
  #pool: KVPool | null = null;
  #closed = false;

  constructor(model: ServableModel, tokenizer: Tokenizer, { maxBatch = 8, maxQueue = 64, maxModelLen, metrics }: BatcherOptions = {}) {
    if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new Error(`[serve] maxBatch must be an integer >= 1, got ${maxBatch}`);
    if (!Number.isInteger(maxQueue) || maxQueue < 0) throw new Error(`[serve] maxQueue must be an integer >= 0, got ${maxQueue}`);
    const context = model.config.blockSize;
    if (maxModelLen !== undefined && (!Number.isInteger(maxModelLen) || maxModelLen < 2 || maxModelLen > context)) {
      throw new Error(`[serve] maxModelLen must be an integer in 2..${context} (the model's context), got ${maxModelLen}`);
    }
    this.contextLength = maxModelLen ?? context;
    this.#model = model;
    this.#tokenizer = tokenizer;
    this.maxBatch = maxBatch;
    this.maxQueue = maxQueue;
    this.#metrics = metrics;
  }

  get queueDepth(): number {
    return this.#waiting.length;
  }

  get running(): number {
    return this.#running.length;
  }

  /** KV-pool slots not held by a running sequence */
  get freeSlots(): number {
    return this.#pool?.freeSlots ?? this.maxBatch;
  }

  /** Device bytes the KV pool takes (allocated at the first request). */
  poolBytes(): number {
    const probe = this.#model.newCache(1, 1);
    const { layers, kvHeads, headDim } = probe;
    probe.dispose();
    return 2 * layers * this.maxBatch * this.contextLength * kvHeads * (headDim + 1) * 4;
  }

  /** Whether `n` more sequences fit in the queue now. */
  hasRoom(n: number): boolean {
    return !this.#closed && this.#waiting.length + n <= this.maxQueue + Math.max(this.maxBatch - this.#running.length, 0);
  }

  /**
   * Queues sequences, all or none (QueueFullError when the queue lacks room for all). Each promise
   * resolves when its sequence finishes (finishReason "cancelled" once its signal aborted).
   */
  submit(reqs: readonly { req: SequenceRequest; sink?: SequenceSink }[]): Promise<SequenceResult>[] {
    if (this.#closed) throw new QueueFullError("the server is shutting down");
    if (!this.hasRoom(reqs.length)) throw new QueueFullError(`the queue is full (${this.#waiting.length} waiting, max ${this.maxQueue})`);
    const { vocabSize } = this.#model.config;
    const blockSize = this.contextLength;
    const promises = reqs.map(({ req, sink = {} }) => {
      if (req.promptIds.length === 0) throw new Error("[serve] empty prompt");
      if (req.promptIds.length + req.maxTokens > blockSize) throw new Error(`[serve] ${req.promptIds.length} prompt + ${req.maxTokens} new tokens exceed the context ${blockSize}`);
      for (const id of req.promptIds) if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new Error(`[serve] prompt token ${id} is outside the vocabulary [0, ${vocabSize})`);
      return new Promise<SequenceResult>((resolve, reject) => {
        const seq: Sequence = {
          req, sink, slot: null, context: [...req.promptIds], tokens: [], counts: new Map(), logprobs: [],
          detok: new StreamingDetokenizer(this.#tokenizer, { anchor: req.promptIds[req.promptIds.length - 1], stopStrings: req.stopStrings }),
          stopTokens: new Set(req.stopTokens), submittedAt: performance.now(), ttftMs: NaN, resolve, reject, done: false,
        };
        this.#waiting.push(seq);
        req.signal?.addEventListener("abort", () => this.#poke(), { once: true });
      });
    });
    this.#poke();
    return promises;
  }

  /** Stops taking work, cancels everything queued or running, and waits for the loop to end. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const s of [...this.#waiting, ...this.#running]) this.#finish(s, "cancelled");
    this.#waiting.length = 0;
    this.#running = [];
    this.#poke();
    await this.#loop;
    this.#pool?.dispose();
    this.#pool = null;
  }

  #poke(): void {
    if (this.#active || this.#closed) return;
    this.#active = true;
    this.#loop = this.#run().catch((e) => {
      this.#active = false; // #guard keeps model errors inside; anything else is a bug: say it, keep serving
      console.error(`[serve] batcher loop: ${(e as Error)?.stack ?? e}`);
    });
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      this.#running = this.#running.filter((s) => !this.#dropIfAborted(s));
      if (this.#running.length === 0 && this.#waiting.length === 0) {
        this.#active = false; // synchronously: the next submit starts a new loop
        return;
      }
      // join: prefill waiting sequences into free slots (each gives its first token)
      while (this.#running.length < this.maxBatch && this.#waiting.length > 0) {
        const s = this.#waiting.shift()!;
        if (this.#dropIfAborted(s)) continue;
        await this.#guard([s], () => this.#prefill(s));
        if (!s.done) this.#running.push(s);
      }
      this.#running = this.#running.filter((s) => !s.done && !this.#dropIfAborted(s));
      if (this.#running.length > 0) {
        const batch = this.#running;
        await this.#guard(batch, () => this.#decode(batch));
        this.#running = this.#running.filter((s) => !s.done);
      }
      // let the HTTP side run (new requests, disconnects) between steps
      await new Promise<void>((r) => setImmediate(r));
    }
    this.#active = false;
  }

  /** Runs model work for `seqs`; a failure ends those sequences with the error, never the loop. */
  async #guard(seqs: Sequence[], fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      for (const s of seqs) {
        if (s.done) continue;
        s.done = true;
        this.#freeSlot(s, true);
        this.#metrics?.sequences.inc({ reason: "error" });
        s.reject(e);
      }
    }
  }

  async #prefill(s: Sequence): Promise<void> {
    const ids = s.req.promptIds;
    const pool = this.#ensurePool();
    s.slot = pool.acquire();
    const logits = await this.#forward([ids], new BatchedKVCache({ pool, slots: [s.slot] })); // [1, V]
    this.#metrics?.promptTokens.inc({}, ids.length);
    this.#step(s, logits);
  }

  async #decode(batch: Sequence[]): Promise<void> {
    const t0 = performance.now();
    const V = this.#model.config.vocabSize;
    const cache = new BatchedKVCache({ pool: this.#pool!, slots: batch.map((s) => s.slot!) });
    const logits = await this.#forward(batch.map((s) => [s.context[s.context.length - 1]]), cache); // [B, V]
    batch.forEach((s, i) => this.#step(s, logits.subarray(i * V, (i + 1) * V)));
    this.#metrics?.batchSize.observe(batch.length);
    this.#metrics?.stepSeconds.observe((performance.now() - t0) / 1000);
  }

  /** The KV pool: maxBatch slots as long as the context (shapes from a throwaway cache). */
  #ensurePool(): KVPool {
    if (this.#pool) return this.#pool;
    const probe = this.#model.newCache(1, 1);
    const { layers, kvHeads, headDim, backend } = probe;
    probe.dispose();
    this.#pool = new KVPool({ layers, slots: this.maxBatch, maxLength: this.contextLength, kvHeads, headDim, backend });
    return this.#pool;
  }

  /** Empties and frees s's slot; after a failed forward the whole slot (it may be half-written). */
  #freeSlot(s: Sequence, failed: boolean): void {
    if (s.slot === null || !this.#pool) return;
    const slot = s.slot;
    s.slot = null;
    this.#pool.release(slot, failed ? this.#pool.maxLength : undefined);
  }

  /** One forward in its own memory scope; the last position's logits of each row, [B·V]. */
  async #forward(rows: number[][], cache: AnyKVCache): Promise<Float32Array> {
    return lastLogits(this.#model, this.#model.parameters()[0].backend, rows, cache);
  }


  /** Chooses s's next token from its logits row and hands it out; finishes s when it should. */
  #step(s: Sequence, logits: Float32Array): void {
    if (s.done) return;
    const { token, logprob } = chooseToken(logits, s.req, s.context, s.counts);
    if (s.tokens.length === 0) {
      s.ttftMs = performance.now() - s.submittedAt;
      this.#metrics?.ttftSeconds.observe(s.ttftMs / 1000);
    }
    s.tokens.push(token);
    s.context.push(token);
    s.counts.set(token, (s.counts.get(token) ?? 0) + 1);
    if (logprob) s.logprobs.push(logprob);
    this.#metrics?.generationTokens.inc();
    if (s.stopTokens.has(token)) {
      s.sink.onToken?.({ token, piece: "", logprob });
      return this.#finish(s, "stop");
    }
    const piece = s.detok.push(token);
    s.sink.onToken?.({ token, piece, logprob });
    if (s.detok.stopped) return this.#finish(s, "stop");
    if (s.tokens.length >= s.req.maxTokens) return this.#finish(s, "length");
  }

  /** Takes out a sequence whose signal aborted (client gone, timeout); true if it did. */
  #dropIfAborted(s: Sequence): boolean {
    if (s.done) return true;
    if (!s.req.signal?.aborted) return false;
    this.#finish(s, "cancelled");
    return true;
  }

  #finish(s: Sequence, reason: FinishReason): void {
    if (s.done) return;
    s.done = true;
    this.#freeSlot(s, false); // the sequence's memory goes back now, not at the next GC
    const rest = reason === "cancelled" ? "" : s.detok.finish();
    const result: SequenceResult = { text: s.detok.text, tokens: s.tokens, promptTokens: s.req.promptIds.length, finishReason: reason, ttftMs: s.ttftMs, ...(s.req.logprobs !== null ? { logprobs: s.logprobs } : {}) };
    this.#metrics?.sequences.inc({ reason });
    try {
      s.sink.onFinish?.(rest, result);
    } finally {
      s.resolve(result);
    }
  }
}
