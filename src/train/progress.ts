// Progress display: a redrawn one-row bar (step, loss, tokens/s, ms/it, lr, memory, ETA) on a TTY,
// plain log lines otherwise. The bar is fitted to the terminal's width (fields drop, least useful
// first, as it narrows) and redrawn when the terminal is resized: a row wider than the terminal wraps,
// and "\r\x1b[2K" then clears only its last row, leaving stale rows behind.

export interface ProgressInfo {
  step: number;
  total: number;
  loss: number;
  tokensPerS: number;
  msPerIter: number;
  lr: number;
  /** bytes the backend holds in live buffers (shown next to the process RSS) */
  deviceBytes?: number;
}

export class Progress {
  readonly tty: boolean;
  #start = performance.now();
  #firstStep: number | null = null;
  #last: { p: ProgressInfo; eta: number } | null = null;
  readonly #onResize = () => this.#redraw();

  constructor(readonly out: NodeJS.WriteStream = process.stdout) {
    this.tty = !!out.isTTY;
    if (this.tty) out.on?.("resize", this.#onResize);
  }

  update(p: ProgressInfo, logLine: boolean): void {
    this.#firstStep ??= p.step - 1;
    const done = p.step - this.#firstStep;
    const elapsed = (performance.now() - this.#start) / 1000;
    const eta = done > 0 ? ((p.total - p.step) * elapsed) / done : 0;
    if (this.tty) {
      this.#last = { p, eta };
      this.#redraw();
    } else if (logLine) {
      this.out.write(formatProgress(p, eta, Infinity, false) + "\n");
    }
  }

  #redraw(): void {
    if (!this.#last) return;
    this.out.write(`\r\x1b[2K${formatProgress(this.#last.p, this.#last.eta, this.out.columns ?? 80, true)}`);
  }

  /** Prints a line without tearing the bar. */
  line(text: string): void {
    this.out.write((this.tty ? "\r\x1b[2K" : "") + text + "\n");
  }

  end(): void {
    if (!this.tty) return;
    this.out.off?.("resize", this.#onResize);
    if (this.#last) this.out.write("\n");
    this.#last = null;
  }
}

/**
 * One progress row at most `columns - 1` characters wide. Fields, most useful first: step, loss, ETA,
 * tokens/s, memory, ms/it, lr; the bar takes what is left (none below 8 characters).
 */
export function formatProgress(p: ProgressInfo, eta: number, columns: number, bar: boolean): string {
  const rss = typeof process !== "undefined" && process.memoryUsage ? process.memoryUsage.rss() : undefined;
  const mem = rss === undefined ? undefined : `mem ${formatBytes(rss)}` + (p.deviceBytes !== undefined ? ` (tensors ${formatBytes(p.deviceBytes)})` : "");
  const byPriority: [number, string][] = [
    [0, `step ${p.step}/${p.total}`],
    [1, `loss ${p.loss.toFixed(4)}`],
    [6, `ETA ${formatDuration(eta)}`],
    [2, `${Math.round(p.tokensPerS).toLocaleString("en-US")} tok/s`],
    ...(mem && bar ? [[5, mem] as [number, string]] : []),
    [3, `${p.msPerIter.toFixed(1)} ms/it`],
    [4, `lr ${p.lr.toExponential(2)}`],
  ];
  const width = columns - 1;
  const kept = byPriority.slice(0, 2);
  let used = kept.reduce((n, [, f]) => n + f.length + 2, -2);
  for (const field of byPriority.slice(2)) {
    if (used + 2 + field[1].length > width) continue;
    kept.push(field);
    used += 2 + field[1].length;
  }
  const text = kept.sort((a, b) => a[0] - b[0]).map(([, f]) => f).join("  ");
  if (!bar) return text;
  const room = Math.min(24, width - text.length - 3); // "[" + bar + "] "
  if (room < 8) return text.slice(0, width);
  const filled = Math.round((room * Math.min(p.step, p.total)) / p.total);
  return `[${"#".repeat(filled)}${"-".repeat(room - filled)}] ${text}`;
}

function formatBytes(n: number): string {
  return n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(1)} GB` : `${Math.round(n / (1 << 20))} MB`;
}

export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const m = Math.floor(s / 60);
  const sec = Math.round(s % 60);
  return m > 0 ? `${m}m${String(sec).padStart(2, "0")}s` : `${sec}s`;
}
