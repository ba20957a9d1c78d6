// The progress bar fits the terminal (src/train/progress.ts): at every width its row is narrower than
// the terminal (a wrapped row leaves stale rows that "\r\x1b[2K" cannot clear), fields drop least
// useful first, and a resize redraws the row at the new width. Plain log lines keep every field.
import { describe, expect, test } from "bun:test";
import { EventEmitter } from "node:events";
import { Progress, formatProgress, type ProgressInfo } from "../../src/train/progress.ts";

const INFO: ProgressInfo = { step: 1234, total: 5000, loss: 1.23456, tokensPerS: 10512.4, msPerIter: 73.1, lr: 6e-4, deviceBytes: 123 << 20 };

class FakeTTY extends EventEmitter {
  isTTY = true;
  columns: number;
  written: string[] = [];
  constructor(columns: number) {
    super();
    this.columns = columns;
  }
  write(s: string): boolean {
    this.written.push(s);
    return true;
  }
}

/** The visible text of the last redraw (after "\r\x1b[2K"). */
const lastRow = (tty: FakeTTY) => tty.written.at(-1)!.replace("\r\x1b[2K", "");

describe("progress bar", () => {
  test.each([20, 30, 40, 60, 80, 105, 120, 200])("fits a %i-column terminal, step and loss always shown", (columns) => {
    const row = formatProgress(INFO, 3725, columns, true);
    expect(row.length).toBeLessThan(columns);
    expect(row).toContain("step 1234/5000");
    if (columns >= 40) expect(row).toContain("loss 1.2346");
  });

  test("fields drop least useful first as the terminal narrows", () => {
    const wide = formatProgress(INFO, 3725, 200, true);
    for (const f of ["[", "loss", "tok/s", "ms/it", "lr 6.00e-4", "mem ", "tensors 123 MB", "ETA 62m05s"]) expect(wide).toContain(f);
    const mid = formatProgress(INFO, 3725, 60, true);
    expect(mid).toContain("ETA");
    expect(mid).not.toContain("lr ");
    const narrow = formatProgress(INFO, 3725, 35, true);
    expect(narrow).not.toContain("tok/s");
  });

  test("plain log lines (not a TTY) keep every field but memory, in the usual order", () => {
    expect(formatProgress(INFO, 5, Infinity, false)).toBe("step 1234/5000  loss 1.2346  10,512 tok/s  73.1 ms/it  lr 6.00e-4  ETA 5s");
  });

  test("a resize redraws the row at the new width", () => {
    const tty = new FakeTTY(100);
    const progress = new Progress(tty as unknown as NodeJS.WriteStream);
    progress.update(INFO, false);
    expect(lastRow(tty).length).toBeLessThan(100);
    tty.columns = 45;
    tty.emit("resize");
    expect(tty.written).toHaveLength(2);
    expect(lastRow(tty).length).toBeLessThan(45);
    progress.end();
    tty.emit("resize"); // after end(): no more redraws
    expect(tty.written).toHaveLength(3); // the final newline only
  });
});
