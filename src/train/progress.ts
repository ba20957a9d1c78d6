// Progress display: a redrawn bar (step, loss, tokens/s, ETA) on a TTY, plain log lines otherwise.

export interface ProgressInfo {
  step: number;
  total: number;
  loss: number;
  tokensPerS: number;
  msPerIter: number;
  lr: number;
}

export class Progress {
  readonly tty: boolean;
  #start = performance.now();
  #firstStep: number | null = null;

  constructor(readonly out: NodeJS.WriteStream = process.stdout) {
    this.tty = !!out.isTTY;
  }

  update(p: ProgressInfo, logLine: boolean): void {
    this.#firstStep ??= p.step - 1;
    const done = p.step - this.#firstStep;
    const elapsed = (performance.now() - this.#start) / 1000;
    const eta = done > 0 ? ((p.total - p.step) * elapsed) / done : 0;
    const text = `step ${p.step}/${p.total}  loss ${p.loss.toFixed(4)}  ${Math.round(p.tokensPerS).toLocaleString("en-US")} tok/s  ${p.msPerIter.toFixed(1)} ms/it  lr ${p.lr.toExponential(2)}  ETA ${formatDuration(eta)}`;
    if (this.tty) {
      const width = 24;
      const filled = Math.round((width * p.step) / p.total);
      this.out.write(`\r\x1b[2K[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${text}`);
    } else if (logLine) {
      this.out.write(text + "\n");
    }
  }

  /** Prints a line without tearing the bar. */
  line(text: string): void {
    this.out.write((this.tty ? "\r\x1b[2K" : "") + text + "\n");
  }

  end(): void {
    if (this.tty) this.out.write("\n");
  }
}

export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const m = Math.floor(s / 60);
  const sec = Math.round(s % 60);
  return m > 0 ? `${m}m${String(sec).padStart(2, "0")}s` : `${sec}s`;
}
