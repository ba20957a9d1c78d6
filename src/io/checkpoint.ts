// Training checkpoints: weights (model.safetensors, Hugging Face names), AdamW moments
// (optimizer.safetensors, "m.<name>" / "v.<name>"), and state.json (step, RNG state, optimizer
// step, anything the caller adds) in one folder per checkpoint, plus latest.json naming the
// newest one with a SHA-256 of each file. A checkpoint folder is written under a temporary name
// and renamed into place, and latest.json is replaced atomically last: a crash or Ctrl-C at any
// moment leaves the previous checkpoint intact and still named by latest.json.

import { access, mkdir, readdir, rename, rm, readFile } from "node:fs/promises";
import { join } from "node:path";
import { createHash } from "node:crypto";
import type { Module } from "../nn/module.ts";
import type { AdamW } from "../optim/adamw.ts";
import { readSafetensors, writeSafetensors, type SafetensorsTensor } from "./safetensors.ts";
import { writeJsonAtomic } from "./atomic.ts";

export const CHECKPOINT_FILES = ["model.safetensors", "optimizer.safetensors", "state.json"] as const;

export interface CheckpointState {
  step: number;
  optimizerStep: number;
  [key: string]: unknown;
}

interface Latest {
  dir: string;
  step: number;
  sha256: Record<string, string>;
}

/** Writes a checkpoint for `step` under `root` (e.g. run/checkpoints); keeps the newest `keep`. Returns its folder. */
export async function saveCheckpoint(
  root: string,
  { model, optimizer, state, keep = 2 }: { model: Module; optimizer?: AdamW; state: CheckpointState; keep?: number },
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

  const moments: Record<string, SafetensorsTensor> = {};
  if (optimizer) {
    for (const [n, t] of named) {
      const s = optimizer.state(t);
      moments[`m.${n}`] = { dtype: "F32", shape: t.shape, data: () => s.m.data() as Promise<Float32Array> };
      moments[`v.${n}`] = { dtype: "F32", shape: t.shape, data: () => s.v.data() as Promise<Float32Array> };
    }
  }
  await writeSafetensors(join(tmp, "optimizer.safetensors"), moments);
  await writeJsonAtomic(join(tmp, "state.json"), { ...state, optimizerStep: optimizer?.stepCount ?? state.optimizerStep });

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
 * Loads the newest checkpoint under `root` into `model` (and `optimizer`), verifying every
 * file's checksum first. Returns the saved state.
 */
export async function loadCheckpoint(root: string, { model, optimizer }: { model: Module; optimizer?: AdamW }): Promise<CheckpointState> {
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
  if (optimizer) {
    const moments = await readSafetensors(join(dir, "optimizer.safetensors"));
    for (const [n, t] of model.namedParameters()) {
      if (!moments.has(`m.${n}`)) throw new Error(`[checkpoint] optimizer state for ${n} is missing`);
      const s = optimizer.state(t);
      t.backend.upload(s.m.storage.buffer, (await moments.read(`m.${n}`)) as Float32Array);
      t.backend.upload(s.v.storage.buffer, (await moments.read(`v.${n}`)) as Float32Array);
    }
    optimizer.stepCount = state.optimizerStep;
  }
  return state;
}

async function fileHash(path: string): Promise<string> {
  return createHash("sha256").update(await readFile(path)).digest("hex");
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}
