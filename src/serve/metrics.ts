// Server metrics in the Prometheus text exposition format (version 0.0.4): counters, gauges and
// histograms with labels, rendered by GET /metrics. A registry per server, no global state, no
// client library: the format is a few lines of text.
// Reference: https://prometheus.io/docs/instrumenting/exposition_formats/

type Labels = Record<string, string>;

abstract class Metric {
  constructor(readonly name: string, readonly help: string, readonly type: "counter" | "gauge" | "histogram") {}
  abstract lines(): string[];
}

function labelText(labels: Labels, extra: Labels = {}): string {
  const all = { ...labels, ...extra };
  const keys = Object.keys(all);
  if (keys.length === 0) return "";
  const esc = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
  return `{${keys.map((k) => `${k}="${esc(all[k])}"`).join(",")}}`;
}

const keyOf = (labels: Labels) => JSON.stringify(Object.entries(labels).sort());

export class Counter extends Metric {
  readonly #values = new Map<string, { labels: Labels; value: number }>();
  constructor(name: string, help: string) {
    super(name, help, "counter");
  }
  inc(labels: Labels = {}, by = 1): void {
    const k = keyOf(labels);
    const e = this.#values.get(k) ?? { labels, value: 0 };
    e.value += by;
    this.#values.set(k, e);
  }
  get(labels: Labels = {}): number {
    return this.#values.get(keyOf(labels))?.value ?? 0;
  }
  lines(): string[] {
    if (this.#values.size === 0) return [`${this.name} 0`];
    return [...this.#values.values()].map((e) => `${this.name}${labelText(e.labels)} ${e.value}`);
  }
}

export class Gauge extends Metric {
  #value = 0;
  /** read at render time when given (e.g. a queue's current length) */
  constructor(name: string, help: string, readonly read?: () => number) {
    super(name, help, "gauge");
  }
  set(v: number): void {
    this.#value = v;
  }
  get value(): number {
    return this.read ? this.read() : this.#value;
  }
  lines(): string[] {
    return [`${this.name} ${this.value}`];
  }
}

export class Histogram extends Metric {
  readonly #counts: number[];
  #sum = 0;
  #count = 0;
  /** upper bounds, ascending; +Inf is implied */
  constructor(name: string, help: string, readonly buckets: readonly number[]) {
    super(name, help, "histogram");
    this.#counts = new Array(buckets.length).fill(0);
  }
  observe(v: number): void {
    this.#sum += v;
    this.#count++;
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]) this.#counts[i]++;
  }
  get count(): number {
    return this.#count;
  }
  lines(): string[] {
    return [
      ...this.buckets.map((b, i) => `${this.name}_bucket${labelText({ le: String(b) })} ${this.#counts[i]}`),
      `${this.name}_bucket{le="+Inf"} ${this.#count}`,
      `${this.name}_sum ${this.#sum}`,
      `${this.name}_count ${this.#count}`,
    ];
  }
}

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** The metrics one server exports. */
export class ServerMetrics {
  readonly requests = new Counter("kiln_requests_total", "HTTP requests by endpoint and status code");
  readonly promptTokens = new Counter("kiln_prompt_tokens_total", "prompt tokens prefilled");
  readonly generationTokens = new Counter("kiln_generation_tokens_total", "tokens generated");
  readonly sequences = new Counter("kiln_sequences_total", "sequences finished, by finish reason (stop, length, cancelled, error)");
  readonly queueDepth: Gauge;
  readonly running: Gauge;
  readonly batchSize = new Histogram("kiln_batch_size", "sequences in each decode step", [1, 2, 4, 8, 16, 32, 64]);
  readonly requestSeconds = new Histogram("kiln_request_duration_seconds", "latency of non-streaming requests, from arrival to the response", SECONDS);
  readonly ttftSeconds = new Histogram("kiln_time_to_first_token_seconds", "time from submission to a sequence's first token", SECONDS);
  readonly stepSeconds = new Histogram("kiln_decode_step_seconds", "one batched decode step (forward + read-back + sampling)", SECONDS);

  readonly backendBytes: Gauge;
  readonly rssBytes = new Gauge("process_resident_memory_bytes", "resident set size of the process", () => process.memoryUsage().rss);

  constructor(read: { queueDepth: () => number; running: () => number; backendBytes: () => number }) {
    this.queueDepth = new Gauge("kiln_queue_depth", "sequences waiting for a slot in the running batch", read.queueDepth);
    this.running = new Gauge("kiln_running_sequences", "sequences in the running batch", read.running);
    this.backendBytes = new Gauge("kiln_backend_allocated_bytes", "device memory in live buffers (weights, KV caches, step intermediates)", read.backendBytes);
  }

  render(): string {
    const all: Metric[] = [this.requests, this.promptTokens, this.generationTokens, this.sequences, this.queueDepth, this.running, this.batchSize, this.requestSeconds, this.ttftSeconds, this.stepSeconds, this.backendBytes, this.rssBytes];
    return all.map((m) => [`# HELP ${m.name} ${m.help}`, `# TYPE ${m.name} ${m.type}`, ...m.lines()].join("\n")).join("\n") + "\n";
  }
}
