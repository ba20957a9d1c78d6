// The serve tests' common setup: the API on a free loopback port with the official `openai` client
// pointed at it, and one close() that stops both and frees what the test handed over (the served
// models, temp folders).

import OpenAI from "openai";
import { rm } from "node:fs/promises";
import { createServer, type KilnServer, type ServerOptions } from "../../src/serve/server.ts";

export interface Served {
  api: KilnServer;
  server: ReturnType<typeof Bun.serve>;
  client: OpenAI;
  /** http://127.0.0.1:<port> */
  base: string;
  /** stops the server and the API; then disposes the models and removes the folders given as cleanup */
  close(): Promise<void>;
}

export function startServer(options: ServerOptions, cleanup: { disposeModels?: boolean; dirs?: string[] } = {}): Served {
  const api = createServer(options);
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: api.fetch });
  const base = `http://127.0.0.1:${server.port}`;
  const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: options.apiKey ?? "unused", maxRetries: 0 });
  return {
    api, server, client, base,
    async close() {
      server.stop(true);
      await api.close();
      if (cleanup.disposeModels) for (const m of options.models) (m.model as { dispose?(): void }).dispose?.();
      for (const d of cleanup.dirs ?? []) await rm(d, { recursive: true, force: true });
    },
  };
}
