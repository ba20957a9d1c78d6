// Training checkpoints: weights (model.safetensors, Hugging Face names), the optimizers' own state
// (optimizer.safetensors: each owned parameter's buffers as "<buffer>.<name>", e.g. "m.<name>",
// "v.<name>" for AdamW, "momentum_buffer.<name>" for SGD; state.json: each optimizer's step and
// hyperparameters, the step, RNG states, anything the caller adds) in one folder per checkpoint,
// with manifest.json (the SHA-256 of each file, so any checkpoint can be verified on its own), plus
// latest.json naming the newest one with the same checksums. A checkpoint folder is written under a
// temporary name (.tmp-step-*), renamed into place under a name no other folder has (a re-save of
// the same step becomes step-NNNNNNN.2, .3, ...), and latest.json is replaced atomically last; only
// then are older folders removed. So a crash or a kill at any moment leaves latest.json naming a
// complete checkpoint, and the folder it names is never deleted before its successor is in place.

import { mkdir, readdir, rename, rm, readFile } from "node:fs/promises";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { UserError, describeFsError, isUserFsError } from "../util/errors.ts";
import type { Module } from "../nn/module.ts";
import type { Optimizer, OptimizerStateDict, ParamState } from "../optim/optimizer.ts";
import { fromArray, type Tensor } from "../tensor/tensor.ts";
import { readSafetensors, writeSafetensors, type SafetensorsTensor } from "./safetensors.ts";
import { writeJsonAtomic } from "./atomic.ts";
import { exists, readJson } from "./files.ts";

export const CHECKPOINT_FILES = ["model.safetensors", "optimizer.safetensors", "state.json"] as const;
/** The checkpoints folder inside a run folder. */
export const CHECKPOINTS = "checkpoints";
const MANIFEST = "manifest.json";
const NAME = /^step-(\d+)(?:\.(\d+))?$/;

/** A checkpoint that cannot be written or read back (names the file; says which older one is intact). */
export class CheckpointError extends UserError {
  override name = "CheckpointError";
}

export interface CheckpointState {
  step: number;
  /** the first optimizer's step count (kept for older readers) */
  optimizerStep?: number;
  [key: string]: unknown;
}

/** One optimizer's numbers in state.json (its buffers are in optimizer.safetensors). */
type SavedOptimizer = Omit<OptimizerStateDict, "state">;

interface Latest {
  dir: string;
  step: number;
  sha256: Record<string, string>;
}

/** Writes a checkpoint for `step` under `root` (e.g. run/checkpoints); keeps the newest `keep`. Returns its folder. */
export async function saveCheckpoint(
  root: string,
  { model, optimizer, optimizers = optimizer ? [optimizer] : [], state, keep = 2, beforeRename }: {
    model: Module;
    optimizer?: Optimizer;
    optimizers?: Optimizer[];
    state: CheckpointState;
    keep?: number;
    /** called with the complete temp folder before it is renamed into place; a throw aborts the save (tests) */
    beforeRename?: (tmp: string) => void | Promise<void>;
  },
): Promise<string> {
  const base = `step-${String(state.step).padStart(7, "0")}`;
  const tmp = join(root, `.tmp-${base}-${process.pid}`);
  let name: string | undefined;
  try {
    await mkdir(root, { recursive: true });
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp);
    await writeCheckpointFiles(tmp, model, optimizers, state);
    const sha256: Record<string, string> = {};
    for (const f of CHECKPOINT_FILES) sha256[f] = await fileHash(join(tmp, f));
    await writeJsonAtomic(join(tmp, MANIFEST), { step: state.step, sha256 });
    await beforeRename?.(tmp);

    // a name no folder has: the folder latest.json names is never replaced in place
    const existing = new Set(await readdir(root));
    name = base;
    for (let k = 2; existing.has(name); k++) name = `${base}.${k}`;
    await rename(tmp, join(root, name));
    await writeJsonAtomic(join(root, "latest.json"), { dir: name, step: state.step, sha256 } satisfies Latest);
  } catch (e) {
    if (name === undefined) await rm(tmp, { recursive: true, force: true }).catch(() => {});
    if (!isUserFsError(e)) throw e;
    const last = await latestCheckpointStep(root).catch(() => null);
    throw new CheckpointError(
      `[checkpoint] cannot save step ${state.step} in ${root}: ${(e as NodeJS.ErrnoException).path ?? root}: ${describeFsError(e)}; ` +
        (last === null ? "no earlier checkpoint exists" : `the last good checkpoint (step ${last}, named by latest.json) is kept`),
      { cause: e },
    );
  }

  // prune (never the folder latest.json now names): older saves of this step, later steps (left by a run
  // resumed from an earlier checkpoint: no longer its history), and all but the newest `keep` steps
  const dirs = (await listCheckpointDirs(root)).filter((d) => d.name !== name);
  const steps = [...new Set(dirs.map((d) => d.step).filter((s) => s < state.step))].sort((a, b) => b - a);
  const keepSteps = new Set(steps.slice(0, Math.max(keep - 1, 0)));
  for (const d of dirs) if (!keepSteps.has(d.step)) await rm(join(root, d.name), { recursive: true, force: true });
  return join(root, name);
}

/** model.safetensors, optimizer.safetensors and state.json of one checkpoint, into `tmp`. */
async function writeCheckpointFiles(tmp: string, model: Module, optimizers: Optimizer[], state: CheckpointState): Promise<void> {
  const named = model.namedParameters();
  const weights: Record<string, SafetensorsTensor> = {};
  for (const [n, t] of named) weights[n] = { dtype: "F32", shape: t.shape, data: () => t.data() as Promise<Float32Array> };
  await writeSafetensors(join(tmp, "model.safetensors"), weights, { format: "pt" });

  const names = new Map(named.map(([n, t]) => [t, n]));
  const buffers: Record<string, SafetensorsTensor> = {};
  const saved: SavedOptimizer[] = [];
  for (const opt of optimizers) {
    const { state: perParam, ...numbers } = opt.stateDict();
    saved.push(numbers);
    for (const [p, s] of perParam) {
      const n = names.get(p);
      if (n === undefined) throw new Error(`[checkpoint] the ${opt.type} optimizer holds a parameter that is not in the model (${p.describe()})`);
      for (const [k, t] of Object.entries(s)) buffers[`${k}.${n}`] = { dtype: "F32", shape: t.shape, data: () => t.data() as Promise<Float32Array> };
    }
  }
  await writeSafetensors(join(tmp, "optimizer.safetensors"), buffers);
  await writeJsonAtomic(join(tmp, "state.json"), {
    ...state,
    ...(optimizers.length ? { optimizerStep: optimizers[0].stepCount, optimizers: saved } : {}),
  });
}

/** The checkpoint folders under `root`, newest first (step, then re-save number). */
async function listCheckpointDirs(root: string): Promise<{ name: string; step: number; gen: number }[]> {
  const out: { name: string; step: number; gen: number }[] = [];
  for (const name of await readdir(root).catch(() => [] as string[])) {
    const m = NAME.exec(name);
    if (m) out.push({ name, step: Number(m[1]), gen: Number(m[2] ?? 1) });
  }
  return out.sort((a, b) => b.step - a.step || b.gen - a.gen);
}

/** The step latest.json names, or null when `root` has no checkpoint. */
export async function latestCheckpointStep(root: string): Promise<number | null> {
  const text = await readFile(join(root, "latest.json"), "utf8").catch(() => null);
  if (text === null) return null;
  try {
    const step = (JSON.parse(text) as Latest).step;
    return Number.isInteger(step) ? step : null;
  } catch {
    return null;
  }
}

/** True when `root` holds a checkpoint (latest.json exists). */
export async function hasCheckpoint(root: string): Promise<boolean> {
  return exists(join(root, "latest.json"));
}

/**
 * Loads the newest checkpoint under `root` (or the one of `step`) into `model` (and its optimizers,
 * in the order they were saved), verifying every file's checksum first. Returns the saved state. A
 * missing or corrupt checkpoint is a CheckpointError naming the file and the newest older
 * checkpoint that verifies.
 */
export async function loadCheckpoint(
  root: string,
  { model, optimizer, optimizers = optimizer ? [optimizer] : [], step }:
    { model: Module; optimizer?: Optimizer; optimizers?: Optimizer[]; step?: number },
): Promise<CheckpointState> {
  const found = step === undefined ? await latestDir(root) : await stepDir(root, step);
  const problem = await verify(root, found);
  if (problem) {
    const older = await newestIntact(root, (d) => d.name !== found.name && d.step <= found.step);
    throw new CheckpointError(
      `[checkpoint] ${problem}; ` +
        (older ? `step ${older.step} (${join(root, older.name)}) is intact: resume from it with --resume-from ${older.step}` : "no older intact checkpoint exists"),
    );
  }
  const dir = join(root, found.name);

  const weights = await readSafetensors(join(dir, "model.safetensors"));
  const values = new Map<string, { shape: readonly number[]; data: Float32Array }>();
  for (const info of weights.tensors) values.set(info.name, { shape: info.shape, data: (await weights.read(info.name)) as Float32Array });
  model.loadStateDict(values);

  const state = (await readJson<CheckpointState>(join(dir, "state.json"), "checkpoint"))!; // present: its checksum matched
  if (optimizers.length) {
    const file = await readSafetensors(join(dir, "optimizer.safetensors"));
    const saved = (state.optimizers as SavedOptimizer[] | undefined) ?? [];
    if (saved.length && saved.length !== optimizers.length) {
      throw new CheckpointError(`[checkpoint] ${dir} holds ${saved.length} optimizer(s), the run has ${optimizers.length}`);
    }
    const names = new Map(model.namedParameters().map(([n, t]) => [t, n]));
    for (const [i, opt] of optimizers.entries()) {
      // checkpoints from before the optimizer protocol hold AdamW moments and optimizerStep only
      const numbers = saved[i] ?? { ...opt.stateDict(), step: state.optimizerStep ?? 0 };
      const perParam = new Map<Tensor, ParamState>();
      const temps: Tensor[] = [];
      try {
        for (const p of opt.params) {
          const n = names.get(p);
          if (n === undefined || !opt.stateKeys.some((k) => file.has(`${k}.${n}`))) continue;
          const s: ParamState = {};
          for (const k of opt.stateKeys) {
            if (!file.has(`${k}.${n}`)) throw new CheckpointError(`[checkpoint] optimizer state "${k}" for ${n} is missing from ${dir}`);
            s[k] = fromArray((await file.read(`${k}.${n}`)) as Float32Array, p.shape, { backend: p.backend });
            temps.push(s[k]);
          }
          perParam.set(p, s);
        }
        opt.loadStateDict({ ...numbers, state: perParam });
      } finally {
        for (const t of temps) t.dispose();
      }
    }
  }
  return state;
}

type Dir = { name: string; step: number; sha256?: Record<string, string> };

async function latestDir(root: string): Promise<Dir> {
  const latestPath = join(root, "latest.json");
  const hint = async () => {
    const intact = await newestIntact(root, () => true);
    return intact ? `; step ${intact.step} (${join(root, intact.name)}) is intact: resume from it with --resume-from ${intact.step}` : "";
  };
  if (!(await exists(latestPath))) throw new CheckpointError(`[checkpoint] no checkpoint in ${root} (missing latest.json)${await hint()}`);
  let latest: Latest;
  try {
    latest = JSON.parse(await readFile(latestPath, "utf8")) as Latest;
  } catch {
    latest = {} as Latest;
  }
  if (typeof latest.dir !== "string" || !NAME.test(latest.dir) || typeof latest.sha256 !== "object" || latest.sha256 === null)
    throw new CheckpointError(`[checkpoint] ${latestPath} is malformed${await hint()}`);
  return { name: latest.dir, step: latest.step, sha256: latest.sha256 };
}

async function stepDir(root: string, step: number): Promise<Dir> {
  const dirs = await listCheckpointDirs(root);
  const found = dirs.find((d) => d.step === step);
  if (!found) {
    const have = [...new Set(dirs.map((d) => d.step))];
    throw new CheckpointError(`[checkpoint] no checkpoint for step ${step} in ${root}` + (have.length ? ` (there are: ${have.join(", ")})` : ""));
  }
  return found;
}

/** Why the checkpoint `dir` cannot be used, or null when every file matches its checksum. */
async function verify(root: string, dir: Dir): Promise<string | null> {
  const path = join(root, dir.name);
  let sha256 = dir.sha256;
  if (!sha256) {
    const manifest = await readFile(join(path, MANIFEST), "utf8").then((t) => JSON.parse(t), () => null);
    sha256 = manifest?.sha256;
    if (typeof sha256 !== "object" || sha256 === null) return `${join(path, MANIFEST)} is missing or malformed (cannot verify ${path})`;
  }
  for (const f of CHECKPOINT_FILES) {
    const got = await fileHash(join(path, f)).catch(() => "missing");
    if (got !== sha256[f]) return `${join(path, f)} is ${got === "missing" ? "missing" : "corrupt (checksum mismatch)"}`;
  }
  return null;
}

/** The newest checkpoint passing `filter` whose files match its own manifest. */
async function newestIntact(root: string, filter: (d: Dir) => boolean): Promise<Dir | undefined> {
  for (const d of await listCheckpointDirs(root)) if (filter(d) && (await verify(root, d)) === null) return d;
  return undefined;
}

async function fileHash(path: string): Promise<string> {
  return createHash("sha256").update(await readFile(path)).digest("hex");
}

