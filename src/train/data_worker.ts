// The data-loader worker thread (see workers.ts): rebuilds the source from its SourceSpec, then
// answers each task with the collated batch (its typed arrays transferred, not copied), the end
// of a stream, or the error and the index it came from. Tasks run one at a time, in the order
// they come (a stream is read forward only).

import { collateHost, type Example, type HostBatch } from "./collate.ts";
import { jsonlLines, parseJsonlLine, tokenFileWindowRange } from "./streams.ts";
import { loadModuleFunction, type SourceSpec, type WorkerInit, type WorkerReply, type WorkerTask } from "./workers.ts";

declare const self: Worker;

type Column = { rows: ArrayLike<number>[] } | { scalars: ArrayLike<number> };

class IndexedError extends Error {
  constructor(readonly index: number, cause: unknown) {
    super((cause as Error)?.message ?? String(cause));
  }
}

interface Loaded {
  init: WorkerInit;
  transform: ((e: Example) => Example | Promise<Example>) | null;
  get: ((i: number) => Promise<unknown>) | null;
  /** streams: the examples of batch b of pass `run` (empty past the end) */
  batchOf: ((run: number, b: number) => Promise<{ index: number; example: unknown }[]>) | null;
}

async function load(init: WorkerInit): Promise<Loaded> {
  const transform = init.transform ? await loadModuleFunction<(e: Example) => Example>(init.transform) : null;
  const src = init.source;
  return { init, transform, get: indexed(src), batchOf: await streamed(src, init.batchSize) };
}

function indexed(src: SourceSpec): Loaded["get"] {
  if (src.kind === "examples") return async (i) => src.examples[i];
  if (src.kind === "tensor") {
    const columns = Object.entries(src.columns as Record<string, Column>);
    return async (i) => Object.fromEntries(columns.map(([name, c]) => [name, "rows" in c ? c.rows[i] : c.scalars[i]]));
  }
  if (src.kind === "module") {
    let ds: Promise<{ get(i: number): unknown }> | null = null;
    return async (i) => (await (ds ??= loadModuleFunction(src.ref))).get(i);
  }
  return null;
}

async function streamed(src: SourceSpec, bs: number): Promise<Loaded["batchOf"]> {
  if (src.kind === "tokens") {
    return async (_run, b) => (await tokenFileWindowRange(src, b * bs, bs)).map((example, k) => ({ index: b * bs + k, example }));
  }
  if (src.kind !== "jsonl") return null;
  let lines = jsonlLines(src.path);
  let seen = 0; // examples (non-blank lines) read so far in this pass
  let pass = -1;
  return async (run, b) => {
    if (run !== pass || b * bs < seen) {
      // a new pass reads the file again from the start
      await lines.return(undefined);
      lines = jsonlLines(src.path);
      seen = 0;
      pass = run;
    }
    const out: { index: number; example: unknown }[] = [];
    while (seen < (b + 1) * bs) {
      const next = await lines.next();
      if (next.done) break;
      const index = seen++;
      if (index < b * bs) continue; // another worker's batch: not parsed
      try {
        out.push({ index, example: parseJsonlLine(src.path, next.value) });
      } catch (e) {
        throw new IndexedError(index, e);
      }
    }
    return out;
  };
}

async function run(state: Loaded, task: WorkerTask): Promise<{ reply: WorkerReply; transfer: ArrayBuffer[] }> {
  const { init, transform } = state;
  let items: { index: number; example: unknown }[];
  if (task.indices) {
    items = [];
    for (const index of task.indices) {
      try {
        items.push({ index, example: await state.get!(index) });
      } catch (e) {
        throw new IndexedError(index, e);
      }
    }
  } else {
    items = await state.batchOf!(task.run, task.batch);
    if (items.length === 0 || (init.dropLast && items.length < init.batchSize)) return { reply: { run: task.run, batch: task.batch, end: true }, transfer: [] };
  }
  const examples: Example[] = [];
  for (const { index, example } of items) {
    try {
      examples.push(transform ? await transform(example as Example) : (example as Example));
    } catch (e) {
      throw new IndexedError(index, e);
    }
  }
  const host: HostBatch = collateHost(examples, init.collate);
  return { reply: { run: task.run, batch: task.batch, host }, transfer: Object.values(host).map((c) => c.data.buffer as ArrayBuffer) };
}

let state: Promise<Loaded> | null = null;
let queue: Promise<void> = Promise.resolve();

self.onmessage = (ev: MessageEvent<WorkerInit | WorkerTask>) => {
  const msg = ev.data;
  if ("source" in msg) {
    state = load(msg);
    state.catch(() => {}); // reported with the first task
    return;
  }
  queue = queue.then(async () => {
    try {
      const { reply, transfer } = await run(await state!, msg);
      self.postMessage(reply, transfer);
    } catch (e) {
      const error = (e as Error)?.message ?? String(e);
      self.postMessage({ run: msg.run, batch: msg.batch, error, index: e instanceof IndexedError ? e.index : undefined } satisfies WorkerReply);
    }
  });
};
