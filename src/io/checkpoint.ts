// Training checkpoints: weights (model.safetensors, Hugging Face names), the optimizers' own state
// (optimizer.safetensors: each owned parameter's buffers as "<buffer>.<name>", e.g. "m.<name>",
// "v.<name>" for AdamW, "momentum_buffer.<name>" for SGD; state.json: each optimizer's step and
// hyperparameters, the step, RNG states, anything the caller adds) in one folder per checkpoint, plus latest.json naming the
// newest one with a SHA-256 of each file. A checkpoint folder is written under a temporary name
// and renamed into place, and latest.json is replaced atomically last: a crash or Ctrl-C at any
// moment leaves the previous checkpoint intact and still named by latest.json.

import { access, mkdir, readdir, rename, rm, readFile } from "node:fs/promises";
import { join } from "node:path";
import { createHash } from "node:crypto";
import type { Module } from "../nn/module.ts";
import type { Optimizer, OptimizerStateDict, ParamState } from "../optim/optimizer.ts";
import { fromArray, type Tensor } from "../tensor/tensor.ts";
import { readSafetensors, writeSafetensors, type SafetensorsTensor } from "./safetensors.ts";
import { writeJsonAtomic } from "./atomic.ts";

export const CHECKPOINT_FILES = ["model.safetensors", "optimizer.safetensors", "state.json"] as const;

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
  { model, optimizer, optimizers = optimizer ? [optimizer] : [], state, keep = 2 }:
    { model: Module; optimizer?: Optimizer; optimizers?: Optimizer[]; state: CheckpointState; keep?: number },
): Promise<string> {
  await mkdir(root, { recursive: true });
  const name = `step-${String(state.step).padStart(7, "0")}`;
  const tmp = join(root, `.tmp-${name}-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp);

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

  const sha256: Record<string, string> = {};
  for (const f of CHECKPOINT_FILES) sha256[f] = await fileHash(join(tmp, f));
  const final = join(root, name);
  await rm(final, { recursive: true, force: true });
  await rename(tmp, final);
  await writeJsonAtomic(join(root, "latest.json"), { dir: name, step: state.step, sha256 } satisfies Latest);

  // prune older checkpoints (never the one latest.json names)
  const dirs = (await readdir(root)).filter((d) => /^step-\d+$/.test(d)).sort();
  for (const d of dirs.slice(0, Math.max(dirs.length - keep, 0))) {
    if (d !== name) await rm(join(root, d), { recursive: true, force: true });
  }
  return final;
}

/** True when `root` holds a checkpoint (latest.json exists). */
export async function hasCheckpoint(root: string): Promise<boolean> {
  return exists(join(root, "latest.json"));
}

/**
 * Loads the newest checkpoint under `root` into `model` (and its optimizers, in the order they
 * were saved), verifying every file's checksum first. Returns the saved state.
 */
export async function loadCheckpoint(
  root: string,
  { model, optimizer, optimizers = optimizer ? [optimizer] : [] }: { model: Module; optimizer?: Optimizer; optimizers?: Optimizer[] },
): Promise<CheckpointState> {
  const latestPath = join(root, "latest.json");
  if (!(await exists(latestPath))) throw new Error(`[checkpoint] no checkpoint in ${root} (missing latest.json)`);
  const latest = JSON.parse(await readFile(latestPath, "utf8")) as Latest;
  if (typeof latest.dir !== "string" || !/^step-\d+$/.test(latest.dir) || typeof latest.sha256 !== "object") {
    throw new Error(`[checkpoint] ${latestPath} is malformed`);
  }
  const dir = join(root, latest.dir);
  for (const f of CHECKPOINT_FILES) {
    const want = latest.sha256[f];
    const got = await fileHash(join(dir, f)).catch(() => "missing");
    if (got !== want) throw new Error(`[checkpoint] ${join(dir, f)} is ${got === "missing" ? "missing" : "corrupt (checksum mismatch)"}`);
  }

  const weights = await readSafetensors(join(dir, "model.safetensors"));
  const values = new Map<string, { shape: readonly number[]; data: Float32Array }>();
  for (const info of weights.tensors) values.set(info.name, { shape: info.shape, data: (await weights.read(info.name)) as Float32Array });
  model.loadStateDict(values);

  const state = JSON.parse(await readFile(join(dir, "state.json"), "utf8")) as CheckpointState;
  if (optimizers.length) {
    const file = await readSafetensors(join(dir, "optimizer.safetensors"));
    const saved = (state.optimizers as SavedOptimizer[] | undefined) ?? [];
    if (saved.length && saved.length !== optimizers.length) {
      throw new Error(`[checkpoint] ${dir} holds ${saved.length} optimizer(s), the run has ${optimizers.length}`);
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
            if (!file.has(`${k}.${n}`)) throw new Error(`[checkpoint] optimizer state "${k}" for ${n} is missing`);
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

async function fileHash(path: string): Promise<string> {
  return createHash("sha256").update(await readFile(path)).digest("hex");
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}
