// ModelInterface: a loaded causal LM as the fine-tuning API hands it around — the module, its
// tokenizer and chat template, and the backend that holds it — with forward (logits and, given
// labels, the shifted masked loss, as transformers' CausalLM), generate, and adapters in and out
// (PEFT folders) or merged into a full Hugging Face folder.

import { join } from "node:path";
import type { Backend } from "../backend/backend.ts";
import type { Tokenizer } from "../data/tokenizer.ts";
import type { ChatTemplate } from "../data/chat_template.ts";
import type { PretrainedModel } from "../models/index.ts";
import { savePretrained } from "../models/pretrained.ts";
import { generate, type GenerateOptions, type GenerateResult } from "../models/generate.ts";
import { fromArray, withBackend, type Tensor } from "../tensor/tensor.ts";
import { loadAdapter, saveAdapter, type LoadAdapterOptions, type PeftLoraConfig } from "../io/peft.ts";
import { loraLayers } from "../nn/lora_model.ts";
import { savedModuleWrappers } from "../nn/modules_to_save.ts";
import { causalLmLoss, maskedCrossEntropy, shiftLabels } from "../train/losses.ts";

/** Token ids [B, T] as a tensor or rows of numbers. */
type Ids = Tensor | readonly (readonly number[])[];

export type FinetuneDType = "float32" | "bfloat16" | "float16";

export interface ModelInterfaceOptions {
  module: PretrainedModel;
  backend: Backend;
  /** the name of the facade backend that loaded it ("wasm", "webgpu", ...) */
  backendName: string;
  tokenizer?: Tokenizer;
  chatTemplate?: ChatTemplate | null;
  /** the folder it came from (base_model_name_or_path of saved adapters) */
  path?: string;
  dtype?: FinetuneDType;
}

export class ModelInterface {
  readonly module: PretrainedModel;
  readonly backend: Backend;
  readonly backendName: string;
  readonly tokenizer?: Tokenizer;
  readonly chatTemplate: ChatTemplate | null;
  readonly path?: string;
  readonly dtype: FinetuneDType;

  constructor(options: ModelInterfaceOptions) {
    this.module = options.module;
    this.backend = options.backend;
    this.backendName = options.backendName;
    this.tokenizer = options.tokenizer;
    this.chatTemplate = options.chatTemplate ?? null;
    this.path = options.path;
    this.dtype = options.dtype ?? "float32";
  }

  /** "wasm (4 threads)", "webgpu (NVIDIA ...)": the compute backend's description */
  get device(): string {
    return this.backend.device ?? this.backend.name;
  }

  /**
   * Logits [B, T, V] for ids [B, T]; with HF labels [B, T] (-100 masked, unshifted) the mean
   * next-token loss over the counted labels instead, computed chunk by chunk through the head so
   * that the [B, T, V] logits are never held (Qwen2.5's vocabulary at 2048 positions is 1.2 GB
   * of them). Logits come with the loss only when asked (`returnLogits: true`).
   */
  forward(inputIds: Ids): { logits: Tensor };
  forward(inputIds: Ids, options: { labels: Ids; returnLogits?: false }): { loss: Tensor; logits?: undefined };
  forward(inputIds: Ids, options: { labels?: Ids; returnLogits?: boolean }): { logits?: Tensor; loss?: Tensor };
  forward(inputIds: Ids, options: { labels?: Ids; returnLogits?: boolean } = {}): { logits?: Tensor; loss?: Tensor } {
    return withBackend(this.backend, () => this.#forward(inputIds, options));
  }

  #forward(inputIds: Ids, { labels, returnLogits = false }: { labels?: Ids; returnLogits?: boolean }): { logits?: Tensor; loss?: Tensor } {
    const ids = this.#ids(inputIds);
    try {
      if (!labels) return { logits: this.module.forward(ids) };
      const [B, T] = ids.shape;
      // labels are read on the host to shift them (as transformers shifts inside the loss)
      if (!(labels instanceof Array) && !labels.backend.downloadSync) throw new Error("[model] on this backend pass labels as number[][] (they are shifted on the host)");
      const raw = labels instanceof Array ? Int32Array.from(labels.flat()) : (labels.dataSync() as Int32Array);
      if (raw.length !== B * T) throw new Error(`[model] labels must be [${B}, ${T}] like the input ids, got ${raw.length} values`);
      const targets = fromArray(shiftLabels(raw, B, T), [B, T], { dtype: "i32", backend: this.backend });
      if (!returnLogits) return { loss: causalLmLoss(this.module, ids, targets) };
      const logits = this.module.forward(ids);
      return { logits, loss: maskedCrossEntropy(logits, targets) };
    } finally {
      if (ids !== inputIds) ids.dispose();
    }
  }

  /** Text (or ids) continued by the model; options as kiln's generate (maxNewTokens, temperature, ...). */
  async generate(prompt: string | readonly number[], options: GenerateOptions = {}): Promise<GenerateResult> {
    return withBackend(this.backend, () => generate(this.module, this.tokenizer ?? null, prompt, options));
  }

  /** Writes the active adapter as a PEFT folder; returns the folder. */
  async saveAdapter(dir: string, adapterName?: string): Promise<string> {
    return saveAdapter(this.module, dir, { adapterName, baseModelNameOrPath: this.path ?? null });
  }

  /** Adds a PEFT adapter folder to the model (trainable unless isTrainable: false). */
  async loadAdapter(dir: string, options: LoadAdapterOptions = {}): Promise<PeftLoraConfig> {
    return loadAdapter(this.module, dir, { isTrainable: true, ...options });
  }

  /**
   * Writes a full Hugging Face folder with the active adapters merged into the weights (mlx-lm's
   * fuse): the model in memory keeps its adapters, unmerged afterwards.
   */
  async savePretrained(dir: string, { dtype = "float32" }: { dtype?: FinetuneDType } = {}): Promise<string> {
    const layers = loraLayers(this.module);
    const wrappers = savedModuleWrappers(this.module);
    // a 16-bit base merges into temporary f32 layers (LoRALinear.mergedLinear), an f32 one in place
    const merged = layers.map(([, l]) => (l.weight.dtype === "f32" ? (l.merge(), l.base) : l.mergedLinear()));
    layers.forEach(([path], i) => this.module.setSubmodule(path, merged[i]));
    for (const [path, w] of wrappers) this.module.setSubmodule(path, w.active); // modules_to_save: the active adapter's copy
    try {
      await savePretrained(this.module, dir, { dtype, ...(this.path ? { tokenizerDir: this.path } : {}) });
    } finally {
      layers.forEach(([path, l], i) => {
        this.module.setSubmodule(path, l);
        if (merged[i] === l.base) l.unmerge();
        else merged[i].dispose();
      });
      for (const [path, w] of wrappers) this.module.setSubmodule(path, w);
    }
    return join(dir);
  }

  #ids(x: Ids): Tensor {
    if (!(x instanceof Array)) return x;
    const T = x[0]?.length ?? 0;
    if (x.some((r) => r.length !== T)) throw new Error("[model] input id rows must have the same length (pad them)");
    return fromArray(Int32Array.from(x.flat()), [x.length, T], { dtype: "i32", backend: this.backend });
  }
}
