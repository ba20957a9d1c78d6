// createServer: kiln's OpenAI-compatible API as one fetch handler (Request -> Response) that a user
// mounts in their own Bun.serve (or `kiln serve` runs alone). Routes: GET /health, GET /metrics,
// GET /v1/models, POST /v1/completions, POST /v1/chat/completions. Around them: an optional API key
// (Authorization: Bearer), a body-size limit (413), JSON and schema errors as 400s naming the
// field, a full queue as 429 with Retry-After, and any other failure as a 500 for that request
// only. Reference: vLLM's and llama.cpp's OpenAI-compatible servers.

import type { Tokenizer } from "../data/tokenizer.ts";
import type { ChatTemplate } from "../data/chat_template.ts";
import { Batcher, type ServableModel } from "./batcher.ts";
import { ServerMetrics } from "./metrics.ts";
import { handleChat, handleCompletion, type ServedModel } from "./openai.ts";
import { ApiError } from "./schema.ts";

export interface ModelEntry {
  /** the name requests give as `model` */
  name: string;
  /** a loaded model in eval mode */
  model: ServableModel & { config: { eosTokenId?: number | number[] | null } };
  tokenizer: Tokenizer;
  /** renders chat messages (null: /v1/chat/completions answers 400 for this model) */
  chatTemplate?: ChatTemplate | null;
  /** generation_config.json: default temperature / top_p / top_k / repetition_penalty, eos ids */
  generationConfig?: ServedModel["generationConfig"];
}

export interface ServerOptions {
  /** the models served; each gets its own decode batch */
  models: ModelEntry[];
  /** sequences decoded together per model (default 8) */
  maxBatch?: number;
  /** sequences waiting per model before 429 (default 64) */
  maxQueue?: number;
  /** positions per sequence, at most each model's context (default: the context); the KV pool of
   *  each model holds maxBatch × this many positions */
  maxModelLen?: number;
  /** request bodies larger than this get 413 (default 1 MiB) */
  maxBodyBytes?: number;
  /** a request still generating after this long is aborted (default 10 minutes) */
  requestTimeoutMs?: number;
  /** when set, /v1/* requires `Authorization: Bearer <apiKey>` */
  apiKey?: string;
}

export interface KilnServer {
  /** the handler: mount it in Bun.serve({ fetch }) or under a route */
  fetch(req: Request): Promise<Response>;
  readonly metrics: ServerMetrics;
  readonly models: readonly ServedModel[];
  /** cancels everything running or queued and stops the decode loops (the models stay loaded) */
  close(): Promise<void>;
}

/**
 * The API for `models` as a fetch handler.
 * @example
 * const api = createServer({ models: [{ name: "tiny", model, tokenizer, chatTemplate }] });
 * Bun.serve({ port: 8080, fetch: api.fetch });
 */
export function createServer(options: ServerOptions): KilnServer {
  const { maxBatch = 8, maxQueue = 64, maxModelLen, maxBodyBytes = 1 << 20, requestTimeoutMs = 600_000, apiKey } = options;
  if (options.models.length === 0) throw new Error("[serve] no models to serve");
  const names = new Set<string>();
  for (const m of options.models) {
    if (names.has(m.name)) throw new Error(`[serve] two models are named ${JSON.stringify(m.name)}`);
    names.add(m.name);
  }
  const served: ServedModel[] = [];
  const metrics = new ServerMetrics({
    queueDepth: () => served.reduce((s, m) => s + m.batcher.queueDepth, 0),
    running: () => served.reduce((s, m) => s + m.batcher.running, 0),
    backendBytes: () => [...new Set(options.models.map((m) => m.model.parameters()[0]?.backend))].reduce((s, b) => s + (b?.stats().allocatedBytes ?? 0), 0),
  });
  const created = Math.floor(Date.now() / 1000);
  for (const m of options.models) {
    served.push({
      name: m.name,
      batcher: new Batcher(m.model, m.tokenizer, { maxBatch, maxQueue, maxModelLen: maxModelLen === undefined ? undefined : Math.min(maxModelLen, m.model.config.blockSize), metrics }),
      tokenizer: m.tokenizer,
      chatTemplate: m.chatTemplate ?? null,
      generationConfig: m.generationConfig,
      eosTokenId: m.model.config.eosTokenId,
      created,
    });
  }
  const byName = new Map(served.map((m) => [m.name, m]));
  const find = (name: string): ServedModel => {
    const m = byName.get(name);
    if (!m) throw new ApiError(400, `model: unknown model ${JSON.stringify(name)}; this server has ${[...byName.keys()].map((k) => JSON.stringify(k)).join(", ")}`, "model", "invalid_request_error", "model_not_found");
    return m;
  };

  async function route(req: Request, path: string): Promise<Response> {
    if (path === "/health") return Response.json({ status: "ok" });
    if (path === "/metrics") return new Response(metrics.render(), { headers: { "content-type": "text/plain; version=0.0.4" } });
    if (apiKey !== undefined && req.headers.get("authorization") !== `Bearer ${apiKey}`) {
      throw new ApiError(401, "missing or wrong API key (Authorization: Bearer <key>)", null, "invalid_request_error", "invalid_api_key");
    }
    if (path === "/v1/models") {
      allow(req, "GET");
      return Response.json({ object: "list", data: served.map((m) => ({ id: m.name, object: "model", created: m.created, owned_by: "kiln", max_model_len: m.batcher.contextLength })) });
    }
    const handler = path === "/v1/completions" ? handleCompletion : path === "/v1/chat/completions" ? handleChat : null;
    if (!handler) throw new ApiError(404, `no route ${req.method} ${path}`, null, "not_found_error");
    allow(req, "POST");
    const body = await readJson(req, maxBodyBytes);
    return handler(body, find, { signal: req.signal, timeoutMs: requestTimeoutMs });
  }

  async function fetch(req: Request): Promise<Response> {
    const t0 = performance.now();
    const path = new URL(req.url).pathname.replace(/\/+$/, "") || "/";
    let res: Response;
    try {
      res = await route(req, path);
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError(500, `internal error: ${(e as Error)?.message ?? e}`);
      if (!(e instanceof ApiError) && process.env.KILN_DEBUG) console.error(e);
      res = Response.json(err.toJSON(), { status: err.status, headers: err.status === 429 ? { "retry-after": "1" } : {} });
    }
    metrics.requests.inc({ endpoint: path, status: String(res.status) });
    if (path.startsWith("/v1/") && !res.headers.get("content-type")?.startsWith("text/event-stream")) metrics.requestSeconds.observe((performance.now() - t0) / 1000);
    return res;
  }

  return {
    fetch,
    metrics,
    models: served,
    async close() {
      await Promise.all(served.map((m) => m.batcher.close()));
    },
  };
}

function allow(req: Request, method: string): void {
  if (req.method !== method) throw new ApiError(405, `${req.method} is not allowed here; use ${method}`);
}

/** The body as JSON, at most `limit` bytes (413 beyond, whether or not Content-Length says so). */
async function readJson(req: Request, limit: number): Promise<unknown> {
  const declared = Number(req.headers.get("content-length") ?? NaN);
  if (declared > limit) throw new ApiError(413, `request body of ${declared} bytes exceeds the limit of ${limit}`);
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (req.body) {
    for await (const chunk of req.body as unknown as AsyncIterable<Uint8Array>) {
      size += chunk.byteLength;
      if (size > limit) throw new ApiError(413, `request body exceeds the limit of ${limit} bytes`);
      chunks.push(chunk);
    }
  }
  const text = new TextDecoder().decode(Buffer.concat(chunks));
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, `body is not valid JSON: ${(e as Error).message}`);
  }
}
