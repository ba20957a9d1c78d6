// `kiln runs`: lists run folders (default: the folders under runs/) with their step, losses and
// status. The status comes from the run folder's own files: a lock held by a live process is
// "running", a lock left by a dead one "crashed" (killed, or stopped by a bug), a final evaluation
// at the last step "finished", a checkpoint before it "interrupted" (Ctrl-C, SIGTERM, early exit).

import { readdir, readFile, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { CHECKPOINTS, latestCheckpointStep } from "../io/checkpoint.ts";
import { LOCK, lockHolder, RUN_MARKERS } from "../io/run_folder.ts";
import { parseCommand } from "./flags.ts";
import { ConfigError } from "../train/config.ts";

const HELP = `usage: kiln runs [folders...] [--root <dir>] [--json]

Lists run folders with step/iters, train and val loss, status (running, finished, interrupted,
crashed, empty) and when they last changed. Default: every run folder under --root (default runs/);
other folders there (a model folder, say) are counted as skipped, not listed.`;

export interface RunSummary {
  path: string;
  status: "running" | "finished" | "interrupted" | "crashed" | "empty";
  step: number | null;
  iters: number | null;
  trainLoss: number | null;
  valLoss: number | null;
  modified: Date;
}

export async function main(argv: string[]): Promise<number> {
  const parsed = parseCommand({ args: argv, options: { root: { type: "string" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" } }, allowPositionals: true }, HELP);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  const root = (values.root as string | undefined) ?? "runs";
  let folders = positionals;
  if (folders.length === 0) {
    const entries = await readdir(root, { withFileTypes: true }).catch(() => null);
    if (entries === null) {
      console.log(`no run folders: ${root}/ does not exist`);
      return 0;
    }
    folders = entries.filter((e) => e.isDirectory()).map((e) => join(root, e.name));
  }
  const runs: RunSummary[] = [];
  const skipped: string[] = [];
  for (const f of folders) {
    const s = await summarize(f);
    if (s) runs.push(s);
    else if (positionals.length) throw new ConfigError(`${f} is not a run folder`);
    else skipped.push(basename(f));
  }
  // a model folder, a data folder... beside the runs: counted, not listed
  skipped.sort();
  const note = skipped.length ? `(${skipped.length} other folder${skipped.length === 1 ? "" : "s"} in ${root}/ skipped: not kiln runs: ${skipped.slice(0, 5).join(", ")}${skipped.length > 5 ? ", ..." : ""})` : null;
  runs.sort((a, b) => a.modified.getTime() - b.modified.getTime());
  if (values.json) {
    console.log(JSON.stringify(runs, null, 2));
    if (note) console.error(note);
    return 0;
  }
  const rows = runs.map((r) => [
    r.path,
    r.status,
    r.step === null ? "-" : `${r.step}/${r.iters ?? "?"}`,
    r.trainLoss === null ? "-" : r.trainLoss.toFixed(4),
    r.valLoss === null ? "-" : r.valLoss.toFixed(4),
    r.modified.toISOString().replace("T", " ").slice(0, 19),
  ]);
  const table = [["run", "status", "step", "train loss", "val loss", "last change (UTC)"], ...rows];
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
  for (const row of table) console.log(row.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd());
  if (runs.length === 0) console.log(`(no run folders in ${root}/)`);
  if (note) console.log(note);
  return 0;
}

/** What a run folder says about itself, or null when `dir` is not one. */
export async function summarize(dir: string): Promise<RunSummary | null> {
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory()) return null;
  const entries = await readdir(dir);
  // kiln's own files, not config.json alone (a Hugging Face model folder has one)
  if (![...RUN_MARKERS, LOCK].some((m) => entries.includes(m))) return null;
  const config = await readFile(join(dir, "config.json"), "utf8").then((t) => JSON.parse(t), () => null);
  const iters = typeof config?.train?.iters === "number" ? config.train.iters : null;
  const step = await latestCheckpointStep(join(dir, CHECKPOINTS));
  let trainLoss: number | null = null;
  let valLoss: number | null = null;
  let finalStep: number | null = null;
  let modified = info.mtime;
  const metrics = await readFile(join(dir, "metrics.jsonl"), "utf8").catch(() => "");
  for (const line of metrics.split("\n")) {
    if (!line.trim()) continue;
    let r: Record<string, unknown>;
    try {
      r = JSON.parse(line);
    } catch {
      continue; // a torn last line of a crashed run
    }
    if (typeof r.loss === "number") trainLoss = r.loss;
    if (typeof r.val_loss === "number") valLoss = r.val_loss;
    if (r.final === true && typeof r.step === "number") finalStep = r.step;
  }
  const metricsInfo = await stat(join(dir, "metrics.jsonl")).catch(() => null);
  if (metricsInfo && metricsInfo.mtime > modified) modified = metricsInfo.mtime;
  const holder = await lockHolder(dir);
  let status: RunSummary["status"];
  if (holder?.alive) status = "running";
  else if (holder) status = "crashed";
  else if (finalStep !== null && (step === null || finalStep >= step)) status = "finished";
  else if (step !== null) status = "interrupted";
  else status = "empty";
  return { path: dir, status, step, iters, trainLoss, valLoss, modified };
}
