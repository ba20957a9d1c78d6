// llama.cpp for the interop tests, through node-llama-cpp's prebuilt CPU binaries. node-llama-cpp
// lives in this folder's own package.json (installed by .ci/run; ~730 MB with its optional
// prebuilt packages), never in kiln's dependencies. Without it the tests skip with a notice, unless
// KILN_TEST_LLAMA_CPP=1 (CI), where a missing install fails instead. Imported by specifier at run
// time so that typechecking kiln does not need the package.

import { existsSync } from "node:fs";
import { join } from "node:path";

export const llamaCppAvailable = existsSync(join(import.meta.dir, "node_modules", "node-llama-cpp", "package.json"));
export const LLAMA_CPP_LIB_DIR = join(import.meta.dir, "node_modules", "@node-llama-cpp", "linux-x64", "bins", "linux-x64");

/** Skips (with a visible notice) or fails when node-llama-cpp is not installed. */
export function requireLlamaCpp(what: string): boolean {
  if (llamaCppAvailable) return true;
  if (process.env.KILN_TEST_LLAMA_CPP === "1") throw new Error(`${what}: node-llama-cpp is not installed (npm install --prefix tests/interop)`);
  console.warn(`SKIP ${what}: llama.cpp interop needs node-llama-cpp (npm install --prefix tests/interop)`);
  return false;
}

let llama: Promise<any> | undefined;

/** The llama.cpp runtime on the CPU (never a GPU: with lavapipe present it would pick Vulkan; never a source build). */
export function getLlamaCpp(): Promise<any> {
  const specifier = "node-llama-cpp";
  llama ??= import(join(import.meta.dir, "node_modules", specifier, "dist", "index.js")).then((m) => m.getLlama({ gpu: false, build: "never", logLevel: "error" }));
  return llama;
}

export interface EvalOptions {
  /** a GGUF LoRA adapter applied at scale 1 */
  lora?: string;
}

/**
 * llama.cpp's next-token log-probabilities after each prefix of `ids` ([T][V]), with an F32 KV cache
 * and flash attention off (its CPU flash-attention kernel rounds through f16: ~1e-3 on logits).
 */
export async function llamaCppLogProbs(modelPath: string, ids: number[], V: number, options: EvalOptions = {}): Promise<Float64Array[]> {
  return withSequence(modelPath, options, async (seq) => {
    const next = { probabilities: true, options: { temperature: 1, topK: 0, topP: 1, minP: 0 } };
    const res = await seq.controlledEvaluate(ids.map((t) => [t, { generateNext: next }]));
    return res.map((r: any) => {
      const out = new Float64Array(V).fill(-Infinity);
      for (const [token, p] of r.next.probabilities as Map<number, number>) out[token] = Math.log(p);
      return out;
    });
  });
}

/** llama.cpp's greedy continuation of `ids` by `n` tokens. */
export async function llamaCppGreedy(modelPath: string, ids: number[], n: number, options: EvalOptions = {}): Promise<number[]> {
  return withSequence(modelPath, options, async (seq) => {
    const out: number[] = [];
    for await (const token of seq.evaluate(ids, { temperature: 0, yieldEogToken: true })) {
      out.push(token as number);
      if (out.length === n) break;
    }
    return out;
  });
}

async function withSequence<T>(modelPath: string, { lora }: EvalOptions, fn: (seq: any) => Promise<T>): Promise<T> {
  const runtime = await getLlamaCpp();
  const model = await runtime.loadModel({ modelPath });
  try {
    // one thread: llama.cpp's workers spin while they wait, which on a small shared machine turns a
    // millisecond decode step into seconds
    const context = await model.createContext({
      contextSize: 64, batchSize: 64, threads: 1, flashAttention: false, experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32",
      ...(lora ? { lora: { adapters: [{ filePath: lora, scale: 1 }] } } : {}),
    });
    try {
      return await fn(context.getSequence());
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}

/** llama.cpp's token ids for `text` with the file's tokenizer (special tokens parsed, no BOS added by hand). */
export async function llamaCppTokenize(modelPath: string, text: string): Promise<number[]> {
  const runtime = await getLlamaCpp();
  const model = await runtime.loadModel({ modelPath, vocabOnly: true });
  try {
    return Array.from(model.tokenize(text, true) as number[]);
  } finally {
    await model.dispose();
  }
}
