// The fine-tuning backend API, the shape of the Python flow it replaces: createBackend("auto",
// { device, dtype, seed }) gives a FinetuneBackend that holds one compute backend (wasm, webgpu,
// or one registered by name) and loads models, makes SFT/DPO trainers and reports memory.
// BackendRegistry lists and creates them by name. A layer above the compute Backend protocol,
// which it does not extend.

import type { Backend } from "../backend/backend.ts";
import { backends as computeBackends, createComputeBackend } from "../backend/registry.ts";
import { seed as seedRng } from "../tensor/random.ts";
import { loadPretrained } from "../models/pretrained.ts";
import { loadChatTemplate } from "../data/chat_template.ts";
import { ModelInterface, type FinetuneDType } from "./model.ts";
import { SftTrainer } from "./sft.ts";
import { DpoTrainer } from "./dpo.ts";
import { nearest } from "../train/keys.ts";

export interface BackendConfig {
  /** "auto" (WebGPU on a real GPU, else wasm), "wasm", "webgpu", or a registered name */
  backend_type?: string | null;
  /** "auto", "cpu" (accept a software WebGPU adapter), or a backend-specific choice */
  device?: string;
  /**
   * storage of the frozen base weights: "bfloat16" / "float16" keep the weight matrices (Linear,
   * embedding) 16-bit on the device, half the memory, widened to f32 inside the products; norms,
   * biases, adapters and optimizer state are float32. "auto" and "float32": all f32.
   */
  dtype?: FinetuneDType | "auto";
  seed?: number;
}

export interface LoadModelOptions {
  /** a PEFT adapter folder to load onto the model (trainable) */
  adapterPath?: string;
}

export type FinetuneBackendFactory = (config: BackendConfig) => Promise<FinetuneBackend>;

export class FinetuneBackend {
  constructor(readonly name: string, readonly compute: Backend, readonly config: Required<Omit<BackendConfig, "seed">> & { seed?: number }) {}

  /** Loads a local Hugging Face folder (weights, tokenizer, chat template), optionally with an adapter. */
  async loadModel(path: string, { adapterPath }: LoadModelOptions = {}): Promise<ModelInterface> {
    // bfloat16 / float16: the weight matrices stay 16-bit on the device (frozen base); "auto" is f32
    const dtype: FinetuneDType = this.config.dtype === "auto" ? "float32" : this.config.dtype;
    const storage = dtype === "bfloat16" ? "bf16" : dtype === "float16" ? "f16" : "f32";
    const { model, tokenizer } = await loadPretrained(path, { backend: this.compute, dtype: storage });
    const chatTemplate = await loadChatTemplate(path).catch(() => null);
    const mi = new ModelInterface({ module: model, backend: this.compute, backendName: this.name, tokenizer, chatTemplate, path, dtype });
    if (adapterPath) await mi.loadAdapter(adapterPath);
    return mi;
  }

  /** A LoRA SFT trainer for `model` (config keys as TRL/PEFT name them, or camelCase). */
  createSftTrainer(model: ModelInterface, config: Record<string, unknown> = {}): SftTrainer {
    this.#check(model, "createSftTrainer");
    return new SftTrainer(model, config);
  }

  /** A DPO trainer; `refModel` overrides the default reference (the model as DPO starts). */
  createDpoTrainer(model: ModelInterface, config: Record<string, unknown> = {}, refModel?: ModelInterface): DpoTrainer {
    this.#check(model, "createDpoTrainer");
    if (refModel) this.#check(refModel, "createDpoTrainer (refModel)");
    return new DpoTrainer(model, config, refModel);
  }

  getDeviceManager(): DeviceManager {
    return new DeviceManager(this.compute);
  }

  #check(model: ModelInterface, what: string): void {
    if (model.backend !== this.compute) {
      throw new Error(`[finetune] ${what}: the model was loaded by backend "${model.backendName}" (${model.device}), not by this "${this.name}" backend (${this.compute.device}): load it through this backend`);
    }
  }
}

/** Memory of the compute backend: stats, peak reset, and emptyCache (pooled buffers back to the system). */
export class DeviceManager {
  constructor(readonly backend: Backend) {}
  emptyCache(): void {
    this.backend.emptyCache();
  }
  memory(): ReturnType<Backend["stats"]> {
    return this.backend.stats();
  }
  resetPeak(): void {
    this.backend.resetPeak();
  }
  get device(): string {
    return this.backend.device;
  }
}

const factories = new Map<string, FinetuneBackendFactory>();

/** Named fine-tuning backends: wasm and webgpu, plus any registered. */
export const BackendRegistry = {
  register(name: string, factory: FinetuneBackendFactory): void {
    factories.set(name, factory);
  },
  listBackends(): string[] {
    return [...new Set([...computeBackends.list(), ...factories.keys()])];
  },
  async create(config: BackendConfig = {}): Promise<FinetuneBackend> {
    const type = config.backend_type ?? "auto";
    const device = config.device ?? "auto";
    const dtype = config.dtype ?? "auto";
    if (!["auto", "float32", "bfloat16", "float16"].includes(dtype)) {
      throw new Error(`[finetune] dtype "${dtype}" is not one of auto, float32, bfloat16, float16`);
    }
    if (type !== "auto" && !BackendRegistry.listBackends().includes(type)) {
      const near = nearest(type, BackendRegistry.listBackends());
      throw new Error(`Unknown backend: ${type} (available: ${["auto", ...BackendRegistry.listBackends()].join(", ")})${near ? `; did you mean "${near}"?` : ""}`);
    }
    const custom = factories.get(type);
    if (custom) return custom(config);
    const compute = await createComputeBackend(type, device === "auto" ? {} : { device });
    if (config.seed !== undefined) seedRng(config.seed);
    return new FinetuneBackend(compute.name, compute, { backend_type: type, device, dtype, seed: config.seed });
  },
};

/**
 * The fine-tuning facade: `await createBackend("auto", { device: "auto", dtype: "bfloat16", seed: 42 })`.
 * (The compute-level factory is createComputeBackend.)
 */
export async function createBackend(type: string | null = "auto", options: Omit<BackendConfig, "backend_type"> = {}): Promise<FinetuneBackend> {
  return BackendRegistry.create({ ...options, backend_type: type });
}
