// Hugging Face model folders: loadPretrained(dir) reads config.json, model.safetensors (or the shards
// of model.safetensors.index.json), the tokenizer and generation_config.json, and builds the model;
// savePretrained(model, dir) writes a folder that kiln and transformers both read. The model is
// built without init (parameters allocated, never filled), then weights load tensor by tensor
// straight into the parameters (F16/BF16 widened to f32): on wasm the file is read into the
// parameter's own bytes in the linear memory, elsewhere through a 64 MB staging buffer, so loading
// holds one copy of the weights. Checkpoint names map to parameters through the model's family
// (./registry.ts). Not a downloader: the folder must be local. Saving is ./save.ts.
// Reference: transformers PreTrainedModel.from_pretrained (file names, tied weights, unexpected keys).

import { open, type FileHandle } from "node:fs/promises";
import { basename, join } from "node:path";
import type { Backend } from "../backend/backend.ts";
import { formatShape, sameShape } from "../tensor/shape.ts";
import { withoutInit, type Tensor } from "../tensor/tensor.ts";
import { readSafetensors, type SafetensorsFile, type SafetensorsTensorInfo } from "../io/safetensors.ts";
import { bf16ArrayToF32, f16ArrayToF32, f32ArrayToBf16, f32ArrayToF16 } from "../tensor/half.ts";
import { isHalf, type HalfDType } from "../tensor/dtype.ts";
import { exists, readJson } from "../io/files.ts";
import { loadTokenizer, type Tokenizer } from "../data/tokenizer.ts";
import { loadModelConfig } from "./config.ts";
import { parseGenerationConfig } from "./generate.ts";
import type { ModelFamily } from "./family.ts";
import { familyByName, type ModelConfig, type PretrainedModel } from "./registry.ts";
import { rememberOrigin, type GenerationConfig } from "./save.ts";

export { savePretrained, type GenerationConfig, type SaveOptions } from "./save.ts";

export interface LoadOptions {
  /** where the weights live (default: the default backend) */
  backend?: Backend;
  /** load the tokenizer when the folder has one (default true) */
  tokenizer?: boolean;
  /**
   * Called with one line naming the checkpoint tensors the model does not use (transformers'
   * "unexpected keys"); default console.warn. Missing or misshapen tensors are errors, never warnings.
   */
  onWarning?: (message: string) => void;
  /**
   * Storage of the weight matrices (Linear and embedding weights): "f32" (default), or "bf16" /
   * "f16" for a frozen 16-bit base (half the memory; read straight from BF16/F16 files, F32 files
   * rounded to nearest even as they load, never the whole model in f32). Norms and biases stay f32.
   */
  dtype?: "f32" | HalfDType;
}

export interface Pretrained {
  /** in eval mode (dropout off), as transformers returns it */
  model: PretrainedModel;
  config: ModelConfig;
  tokenizer?: Tokenizer;
  generationConfig?: GenerationConfig;
  /** checkpoint tensors the model does not use, skipped with a warning (transformers' unexpected_keys) */
  unexpectedKeys: string[];
}

const SINGLE = "model.safetensors";
const INDEX = "model.safetensors.index.json";

/**
 * Loads a local Hugging Face folder: the model (weights checked name by name and shape by shape),
 * its parsed config, and the tokenizer and generation config when present.
 * @example const { model, tokenizer } = await loadPretrained("models/Qwen2.5-0.5B");
 */
export async function loadPretrained(dir: string, { backend, tokenizer = true, onWarning, dtype = "f32" }: LoadOptions = {}): Promise<Pretrained> {
  const config = await loadModelConfig(dir);
  const checkpoint = await openCheckpoint(dir);
  // every parameter is overwritten from the checkpoint (copyWeights checks that each one is covered):
  // no init values (seconds per GB of normals, then a host copy and an upload), no RNG draws
  const family = familyByName(config.family);
  const model = withoutInit(() => family.create(config, backend), { matrices: dtype === "f32" ? undefined : dtype });
  try {
    const { unexpectedKeys } = await copyWeights(model, family, config, checkpoint, dir, onWarning);
    const generationConfig = await readGenerationConfig(join(dir, "generation_config.json"), config.vocabSize);
    const hasTokenizer = (await exists(join(dir, "tokenizer.json"))) || (await exists(join(dir, "vocab.json")));
    const tok = tokenizer && hasTokenizer ? await loadTokenizer(dir) : undefined;
    if (tok) checkTokenizerFits(tok, config, dir);
    rememberOrigin(model, { dir, config, generationConfig });
    return { model: model.eval(), config, tokenizer: tok, generationConfig, unexpectedKeys };
  } catch (e) {
    model.dispose(); // nothing half-loaded stays on the device
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Checkpoint files: one model.safetensors, or shards listed by model.safetensors.index.json.

/** Every tensor of the checkpoint: name -> the file holding it. */
type Checkpoint = Map<string, SafetensorsFile>;

async function openCheckpoint(dir: string): Promise<Checkpoint> {
  const out: Checkpoint = new Map();
  if (await exists(join(dir, SINGLE))) {
    const file = await readSafetensors(join(dir, SINGLE));
    for (const name of file.names()) out.set(name, file);
    return out;
  }
  const indexPath = join(dir, INDEX);
  const index = await readJson<{ weight_map?: unknown }>(indexPath, "pretrained");
  if (index === undefined) throw new Error(`[pretrained] ${dir} has neither ${SINGLE} nor ${INDEX}`);
  const map = index.weight_map;
  if (typeof map !== "object" || map === null || Array.isArray(map)) throw new Error(`[pretrained] ${indexPath}: "weight_map" is not an object`);
  const byShard = new Map<string, string[]>();
  for (const [name, shard] of Object.entries(map)) {
    if (typeof shard !== "string" || shard !== basename(shard) || shard === ".." || !shard.endsWith(".safetensors")) {
      throw new Error(`[pretrained] ${indexPath}: weight ${JSON.stringify(name)} maps to ${JSON.stringify(shard)}, not a .safetensors file in the folder`);
    }
    byShard.set(shard, [...(byShard.get(shard) ?? []), name]);
  }
  for (const [shard, names] of byShard) {
    const path = join(dir, shard);
    if (!(await exists(path))) {
      throw new Error(`[pretrained] shard ${shard} listed in ${INDEX} is missing from ${dir} (it holds ${names.length} weights: ${preview(names)})`);
    }
    const file = await readSafetensors(path);
    const absent = names.filter((n) => !file.has(n));
    if (absent.length) throw new Error(`[pretrained] ${INDEX} lists ${absent.length} weights in ${shard} that it does not hold: ${preview(absent)}`);
    for (const name of names) out.set(name, file);
  }
  return out;
}

/**
 * Loads the safetensors weights of folder `dir` (model.safetensors or sharded) into an existing
 * model of the same architecture: every parameter must be present with its shape; tensors the
 * model does not use are skipped with a warning and returned.
 */
export async function loadWeights(
  model: PretrainedModel, dir: string, { onWarning }: Pick<LoadOptions, "onWarning"> = {},
): Promise<{ unexpectedKeys: string[] }> {
  const family = model.family as ModelFamily<ModelConfig, PretrainedModel>;
  return copyWeights(model, family, family.configOf(model), await openCheckpoint(dir), dir, onWarning);
}

/** Checkpoint tensors into `model`'s parameters, named through `family` (every parameter must be covered). */
async function copyWeights(
  model: PretrainedModel, family: ModelFamily<ModelConfig, PretrainedModel>, config: ModelConfig, checkpoint: Checkpoint, dir: string,
  onWarning: (message: string) => void = console.warn,
): Promise<{ unexpectedKeys: string[] }> {
  const params = model.stateDict(); // name -> parameter
  const targets = new Map<string, string>(); // checkpoint name -> parameter name
  const unexpected: string[] = [];
  for (const name of checkpoint.keys()) {
    const param = family.fromHFName(name, config);
    if (param === null) continue;
    if (!params.has(param)) unexpected.push(name);
    else targets.set(name, param);
  }
  const covered = new Set(targets.values());
  const missing = [...params.keys()].filter((p) => !covered.has(p));
  const what = model.constructor.name;
  if (missing.length) {
    throw new Error(
      `[pretrained] ${dir}: the weights do not fit ${what}; missing ${missing.length} of ${params.size}: ${preview(missing)}` +
        (unexpected.length ? `; unexpected ${unexpected.length}: ${preview(unexpected)}` : ""),
    );
  }
  // as transformers: tensors the model has no place for (another head, a zero-element placeholder)
  // are skipped, and said so
  if (unexpected.length) {
    onWarning(`[pretrained] ${dir}: ${unexpected.length} checkpoint tensors are not used by ${what} and were skipped (unexpected keys): ${preview(unexpected)}`);
  }
  // sequential reads: group by file, each in offset order
  const order = [...targets.keys()].sort((a, b) => {
    const fa = checkpoint.get(a)!, fb = checkpoint.get(b)!;
    return fa === fb ? fa.info(a).byteOffset - fb.info(b).byteOffset : fa.path < fb.path ? -1 : 1;
  });
  for (const name of order) {
    const file = checkpoint.get(name)!;
    const info = file.info(name);
    const param = params.get(targets.get(name)!)!;
    if (!sameShape(info.shape, param.shape)) {
      throw new Error(`[pretrained] ${name} in ${basename(file.path)} is ${info.dtype} ${formatShape(info.shape)}, the model expects ${formatShape(param.shape)}`);
    }
    if (!(info.dtype in FLOAT_BYTES)) {
      throw new Error(`[pretrained] ${name} in ${basename(file.path)} has dtype ${info.dtype}; kiln loads F32, F16, BF16 and F64 weights`);
    }
  }
  // every checkpoint tensor into its parameter, one tensor at a time, in file order
  const reader = new TensorReader(order.map((n) => checkpoint.get(n)!.info(n)));
  try {
    for (const name of order) await reader.load(checkpoint.get(name)!, name, params.get(targets.get(name)!)!);
  } finally {
    await reader.close();
  }
  return { unexpectedKeys: unexpected };
}

const FLOAT_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };

/** Staging for backends without host views, and for F64 (wider than its f32 target): bytes at most. */
export const STAGING_BYTES = 64 << 20;


/**
 * Reads float tensors into parameters as f32. Where the backend maps its buffers into host memory
 * (wasm), F32, F16 and BF16 bytes are read straight into the parameter: no host copy of the
 * tensor, and the only fresh memory a load touches is the parameters' own (first-touch page faults
 * cost as much as the copy). 16-bit data lands in the upper half of the parameter's 4n bytes and
 * widens in place (each step reads element i before writing it). Otherwise, and for F64, the
 * tensor goes through one staging buffer of at most STAGING_BYTES in chunks: read, converted in
 * place (F64 narrows from the front), then copied or uploaded at its offset. Each file opens once.
 * Offsets come from SafetensorsFile, which validated them against the file when it read the header.
 */
export class TensorReader {
  readonly #stagingBytes: number;
  #staging: ArrayBuffer | undefined;
  readonly #handles = new Map<string, FileHandle>();

  constructor(infos: readonly SafetensorsTensorInfo[], stagingBytes = STAGING_BYTES) {
    const need = (i: SafetensorsTensorInfo) => (i.byteLength / FLOAT_BYTES[i.dtype]) * Math.max(4, FLOAT_BYTES[i.dtype]);
    this.#stagingBytes = Math.max(8, Math.min(stagingBytes - (stagingBytes % 8), Math.max(0, ...infos.map(need))));
  }

  /**
   * Loads tensor `name` of `file` into `param` (same element count; f32). `direct: false` stages
   * even where the backend has host views (tests compare the two paths).
   */
  async load(file: SafetensorsFile, name: string, param: Tensor, { direct = true } = {}): Promise<void> {
    const info = file.info(name);
    const width = FLOAT_BYTES[info.dtype];
    const n = info.byteLength / width;
    const view = (direct && param.backend.hostView?.(param.storage.buffer)) || null;
    if (isHalf(param.dtype)) return this.#loadHalf(file, name, param, view);
    if (view && width <= 4) {
      const at = width === 2 ? 2 * n : 0;
      await this.#read(file, name, view.subarray(at, at + info.byteLength), info.byteOffset);
      toF32InPlace(info.dtype, view.buffer, view.byteOffset, n);
      return;
    }
    this.#staging ??= new ArrayBuffer(this.#stagingBytes);
    const chunk = Math.max(1, Math.floor(this.#staging.byteLength / Math.max(4, width))); // elements per step
    for (let i = 0; i < n; i += chunk) {
      const m = Math.min(chunk, n - i);
      const at = width === 2 ? 2 * m : 0;
      await this.#read(file, name, new Uint8Array(this.#staging, at, m * width), info.byteOffset + i * width);
      const values = toF32InPlace(info.dtype, this.#staging, 0, m);
      if (view) view.set(new Uint8Array(this.#staging, 0, 4 * m), 4 * i);
      else param.backend.upload(param.storage.buffer, values, 4 * i);
    }
  }

  /**
   * Into a 16-bit parameter (a 16-bit base): a file tensor of the same dtype is read as is
   * (straight into the parameter on wasm); others (F32, the other 16-bit format, F64) go through
   * the staging buffer in chunks, widened to f32 and rounded to nearest even into 16 bits there.
   */
  async #loadHalf(file: SafetensorsFile, name: string, param: Tensor, view: Uint8Array | null): Promise<void> {
    const info = file.info(name);
    const width = FLOAT_BYTES[info.dtype];
    const n = info.byteLength / width;
    const same = info.dtype === (param.dtype === "bf16" ? "BF16" : "F16");
    if (same && view) return this.#read(file, name, view.subarray(0, info.byteLength), info.byteOffset);
    this.#staging ??= new ArrayBuffer(this.#stagingBytes);
    // an even count per chunk keeps each upload at a 4-byte offset (WebGPU's rule)
    const chunk = Math.max(2, Math.floor(this.#staging.byteLength / Math.max(4, width)) & ~1);
    for (let i = 0; i < n; i += chunk) {
      const m = Math.min(chunk, n - i);
      const bits = new Uint16Array(this.#staging, 0, m);
      if (same) await this.#read(file, name, new Uint8Array(this.#staging, 0, 2 * m), info.byteOffset + i * 2);
      else {
        const at = width === 2 ? 2 * m : 0;
        await this.#read(file, name, new Uint8Array(this.#staging, at, m * width), info.byteOffset + i * width);
        const values = toF32InPlace(info.dtype, this.#staging, 0, m) as Float32Array<ArrayBuffer>;
        // narrows in place from the front: u16 j (bytes 2j..) is written after f32 j (bytes 4j..) is read
        if (param.dtype === "bf16") f32ArrayToBf16(values, bits);
        else f32ArrayToF16(values, bits);
      }
      const bytes = new Uint8Array(this.#staging, 0, 2 * m);
      if (view) view.set(bytes, 2 * i);
      else param.backend.upload(param.storage.buffer, bytes, 2 * i);
    }
  }

  /** Fills `bytes` from `file` at `position`. */
  async #read(file: SafetensorsFile, name: string, bytes: Uint8Array, position: number): Promise<void> {
    let handle = this.#handles.get(file.path);
    if (!handle) this.#handles.set(file.path, (handle = await open(file.path, "r")));
    for (let done = 0; done < bytes.length; ) {
      const { bytesRead } = await handle.read(bytes, done, bytes.length - done, position + done);
      if (bytesRead === 0) throw new Error(`[pretrained] ${file.path} ended inside tensor ${name} (changed since it was opened?)`);
      done += bytesRead;
    }
  }

  async close(): Promise<void> {
    for (const h of this.#handles.values()) await h.close();
    this.#handles.clear();
  }
}

/**
 * Converts n values of `dtype` to f32 in place, the f32 result from `byteOffset` (8-aligned):
 * F32 stays, F16/BF16 bits read from byteOffset + 2n widen upward, F64 narrows from the front.
 */
function toF32InPlace(dtype: string, buffer: ArrayBufferLike, byteOffset: number, n: number): Float32Array {
  const out = new Float32Array(buffer, byteOffset, n);
  switch (dtype) {
    case "F32":
      return out;
    case "F16": // (the converters are typed for ArrayBuffer; wasm memory is a SharedArrayBuffer)
      f16ArrayToF32(new Uint16Array(buffer, byteOffset + 2 * n, n), out as Float32Array<ArrayBuffer>);
      return out;
    case "BF16":
      bf16ArrayToF32(new Uint16Array(buffer, byteOffset + 2 * n, n), out as Float32Array<ArrayBuffer>);
      return out;
    default: {
      const f64 = new Float64Array(buffer, byteOffset, n);
      for (let i = 0; i < n; i++) out[i] = f64[i]; // reads bytes 8i.., writes 4i..: never ahead of the reads
      return out;
    }
  }
}


/**
 * Every id the tokenizer can emit must have a row in the embedding: a tokenizer smaller than the
 * (padded) vocab_size is normal (Qwen2's is), a larger one would feed the model ids it has no row for.
 */
function checkTokenizerFits(tok: Tokenizer, config: ModelConfig, dir: string): void {
  if (tok.vocabSize <= config.vocabSize) return;
  throw new Error(
    `[pretrained] ${dir}: the tokenizer has ${tok.vocabSize} token ids (0..${tok.vocabSize - 1}) but config.json vocab_size is ` +
      `${config.vocabSize}: ids ${config.vocabSize}.. would have no embedding row (a tokenizer from another model?)`,
  );
}

/** generation_config.json, checked field by field (generate.ts's schema) and its token ids against the vocabulary. */
async function readGenerationConfig(path: string, vocabSize: number): Promise<GenerationConfig | undefined> {
  const raw = await readJson<GenerationConfig>(path, "pretrained");
  if (raw === undefined) return undefined;
  try {
    parseGenerationConfig(raw);
  } catch (e) {
    throw new Error(`[pretrained] ${path}: ${(e as Error).message.replace(/^\[generate\] generation config /, "")}`, { cause: e });
  }
  for (const field of ["bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id"]) {
    const v = raw[field];
    if (v == null) continue;
    for (const id of Array.isArray(v) ? v : [v]) {
      if (!(Number.isInteger(id) && id >= 0 && id < vocabSize))
        throw new Error(`[pretrained] ${path}: field ${field} = ${JSON.stringify(v)}: ${JSON.stringify(id)} is not a token id below vocab_size ${vocabSize}`);
    }
  }
  return raw;
}

// ---------------------------------------------------------------------------------------------

function preview(names: readonly string[], n = 8): string {
  return names.slice(0, n).join(", ") + (names.length > n ? `, ... (${names.length - n} more)` : "");
}

