// Load lab for loadPretrained: writes a ~1 GB Llama-layout folder (3 layers at TinyLlama's widths,
// 266M parameters) to a temp dir, then loads it in a fresh child process and reports model build
// time, weight-copy throughput (GB/s of file bytes) and the child's peak RSS against the weight bytes.
// The file is read warm (just written, in the page cache). The temp dir is deleted afterwards.
// Run: `npx bun tests/bench/load.bench.ts [--dtype F32|BF16] [--backend wasm|webgpu] [--json]`.

import { parseArgs } from "node:util";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { f32ArrayToBf16 } from "../../src/tensor/half.ts";

export interface LoadFigures {
  dtype: string;
  backend: string;
  fileBytes: number;
  /** f32 bytes of the parameters once loaded */
  weightBytes: number;
  /**
   * loadPretrained seconds minus a second weight copy into the same parameters: building the model
   * (parameters allocated, init skipped) plus the first touch of the parameters' fresh memory, which
   * the second copy no longer pays (on wasm the first load reads straight into untouched pages)
   */
  buildSeconds: number;
  loadSeconds: number;
  /** file bytes / weight-copy seconds (read, convert, upload) into already-touched parameters */
  copyGBps: number;
  /** file bytes / whole loadPretrained seconds */
  endToEndGBps: number;
  rssBeforeBytes: number;
  peakRssBytes: number;
  /** (peak RSS − RSS before loading) / weight bytes: 1 means one copy of the weights */
  peakOverWeights: number;
}

/** TinyLlama-1.1B widths with 3 layers: ~266M parameters, 1.06 GB as F32. */
export const BENCH_CONFIG = {
  architectures: ["LlamaForCausalLM"], model_type: "llama", vocab_size: 32000, hidden_size: 2048, intermediate_size: 5632,
  num_hidden_layers: 3, num_attention_heads: 32, num_key_value_heads: 4, max_position_embeddings: 2048, rms_norm_eps: 1e-5,
  rope_theta: 10000, tie_word_embeddings: false, torch_dtype: "float32",
};

/** Writes the folder, loads it in a child process, deletes it; returns the child's figures. */
export async function benchLoad({ dtype = "F32", backend = "wasm" }: { dtype?: "F32" | "BF16"; backend?: string } = {}): Promise<LoadFigures> {
  const dir = await mkdtemp(join(tmpdir(), "kiln-load-bench-"));
  try {
    const fileBytes = await writeFolder(dir, dtype);
    const child = Bun.spawn([process.execPath, import.meta.path, "--child", dir, "--backend", backend, "--dtype", dtype], { stdout: "pipe", stderr: "inherit" });
    const out = await new Response(child.stdout).text();
    if ((await child.exited) !== 0) throw new Error(`load child failed: ${out}`);
    return { ...(JSON.parse(out.trim().split("\n").pop()!) as LoadFigures), fileBytes };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------

function tensorList(): [string, number[]][] {
  const c = BENCH_CONFIG;
  const [C, I, V] = [c.hidden_size, c.intermediate_size, c.vocab_size];
  const D = C / c.num_attention_heads;
  const out: [string, number[]][] = [["model.embed_tokens.weight", [V, C]]];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}.`;
    out.push([p + "input_layernorm.weight", [C]], [p + "self_attn.q_proj.weight", [C, C]], [p + "self_attn.k_proj.weight", [c.num_key_value_heads * D, C]],
      [p + "self_attn.v_proj.weight", [c.num_key_value_heads * D, C]], [p + "self_attn.o_proj.weight", [C, C]],
      [p + "post_attention_layernorm.weight", [C]], [p + "mlp.gate_proj.weight", [I, C]], [p + "mlp.up_proj.weight", [I, C]], [p + "mlp.down_proj.weight", [C, I]]);
  }
  out.push(["model.norm.weight", [C]], ["lm_head.weight", [V, C]]);
  return out;
}

/** Streams a safetensors file (16 MB at a time, never the whole file in memory) + config.json. */
export async function writeFolder(dir: string, dtype: "F32" | "BF16"): Promise<number> {
  const size = dtype === "F32" ? 4 : 2;
  const tensors = tensorList();
  let offset = 0;
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  for (const [name, shape] of tensors) {
    const bytes = shape.reduce((a, b) => a * b, 1) * size;
    header[name] = { dtype, shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
  padded.set(json);
  const lengthBytes = new Uint8Array(8);
  new DataView(lengthBytes.buffer).setBigUint64(0, BigInt(padded.length), true);
  const CHUNK = 4 << 20; // elements per write
  const values = new Float32Array(CHUNK);
  for (let i = 0; i < CHUNK; i++) values[i] = Math.sin(i * 0.618) * 0.02; // arbitrary finite values
  const chunk = dtype === "F32" ? new Uint8Array(values.buffer) : new Uint8Array(f32ArrayToBf16(values).buffer);
  const handle = await open(join(dir, "model.safetensors"), "w");
  try {
    await handle.write(lengthBytes);
    await handle.write(padded);
    for (let left = offset; left > 0; left -= Math.min(left, chunk.length)) await handle.write(chunk.subarray(0, Math.min(left, chunk.length)));
  } finally {
    await handle.close();
  }
  await writeFile(join(dir, "config.json"), JSON.stringify({ ...BENCH_CONFIG, torch_dtype: dtype === "F32" ? "float32" : "bfloat16" }));
  return 8 + padded.length + offset;
}

/** In the child: build + load, timed, with peak RSS (ru_maxrss) before and after. */
async function childLoad(dir: string, backendName: string, dtype: string): Promise<void> {
  const { createComputeBackend } = await import("../../src/backend/registry.ts");
  const { useBackend } = await import("../../src/tensor/tensor.ts");
  const { loadPretrained, loadWeights } = await import("../../src/models/index.ts");
  const backend = await createComputeBackend(backendName, backendName === "webgpu" ? { device: "cpu" } : {});
  useBackend(backend);
  const rssBeforeBytes = process.resourceUsage().maxRSS * 1024;
  let t = performance.now();
  const { model } = await loadPretrained(dir, { tokenizer: false });
  await backend.flush();
  const loadSeconds = (performance.now() - t) / 1000;
  const peakRssBytes = process.resourceUsage().maxRSS * 1024;
  const weightBytes = model.numParameters() * 4;
  // the weight copy alone (read, convert, upload), again into the same model; the rest of the first load was the build
  t = performance.now();
  await loadWeights(model, dir);
  await backend.flush();
  const copySeconds = (performance.now() - t) / 1000;
  const buildSeconds = Math.max(loadSeconds - copySeconds, 0);
  model.dispose();
  const fileBytes = (await Bun.file(join(dir, "model.safetensors")).size) as number;
  const figures: LoadFigures = {
    dtype, backend: backendName, fileBytes, weightBytes, buildSeconds, loadSeconds,
    copyGBps: fileBytes / copySeconds / 1e9, endToEndGBps: fileBytes / loadSeconds / 1e9,
    rssBeforeBytes, peakRssBytes, peakOverWeights: (peakRssBytes - rssBeforeBytes) / weightBytes,
  };
  console.log(JSON.stringify(figures));
  backend.dispose();
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { child: { type: "string" }, backend: { type: "string", default: "wasm" }, dtype: { type: "string", default: "F32" }, json: { type: "boolean" } },
  });
  if (values.child) {
    await childLoad(values.child, values.backend!, values.dtype!);
  } else {
    const f = await benchLoad({ dtype: values.dtype as "F32" | "BF16", backend: values.backend });
    if (values.json) console.log(JSON.stringify(f));
    else {
      const gb = (b: number) => (b / 1e9).toFixed(2);
      console.log(`load ${f.dtype} on ${f.backend}: file ${gb(f.fileBytes)} GB, weights ${gb(f.weightBytes)} GB (f32)`);
      console.log(`  loadPretrained ${f.loadSeconds.toFixed(2)} s = model build ${f.buildSeconds.toFixed(2)} s + weight copy ${(f.fileBytes / f.copyGBps / 1e9).toFixed(2)} s`);
      console.log(`  weight copy ${f.copyGBps.toFixed(2)} GB/s (file bytes, warm cache); end to end ${f.endToEndGBps.toFixed(2)} GB/s`);
      console.log(`  peak RSS ${gb(f.peakRssBytes)} GB (before load ${gb(f.rssBeforeBytes)} GB): ${f.peakOverWeights.toFixed(2)}× the weights`);
    }
  }
}
