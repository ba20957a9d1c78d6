// Named starting points for a builder config: sizes and the hardware each targets. Parameter counts
// are the built model's (tested); the hardware column is where a run of a few hours makes sense.

import type { BuilderConfigInput } from "./config.ts";

export type PresetName = "tiny" | "cpu_small" | "cpu_medium" | "gpu_small" | "gpu_medium" | "gpu_large";

export interface Preset {
  /** who it is for, and the hardware */
  description: string;
  config: BuilderConfigInput;
}

export const PRESETS: Record<PresetName, Preset> = {
  tiny: {
    description: "smoke tests and tutorials: any CPU, seconds per epoch (GPT, 2 layers, 64 wide, ~0.14M parameters)",
    config: {
      model: { modelType: "gpt", vocabSize: 512, numLayers: 2, numHeads: 2, embeddingDim: 64, maxSeqLength: 128, dropout: 0 },
      training: { batchSize: 8, learningRate: 1e-3, epochs: 1, maxSteps: 200, warmupSteps: 20, logEvery: 10 },
      system: { device: "cpu" },
    },
  },
  cpu_small: {
    description: "a laptop CPU (2-4 cores, 4 GB RAM): GPT, 4 layers, 128 wide, ~1.35M parameters",
    config: {
      model: { modelType: "gpt", vocabSize: 4096, numLayers: 4, numHeads: 4, embeddingDim: 128, maxSeqLength: 256, dropout: 0.1 },
      training: { batchSize: 16, learningRate: 1e-3, epochs: 1, maxSteps: 2000, warmupSteps: 100 },
      system: { device: "cpu" },
    },
  },
  cpu_medium: {
    description: "a workstation CPU (8+ cores, 8 GB RAM): GPT, 6 layers, 384 wide, ~13.9M parameters (nanoGPT's baby GPT)",
    config: {
      model: { modelType: "gpt", vocabSize: 8192, numLayers: 6, numHeads: 6, embeddingDim: 384, maxSeqLength: 256, dropout: 0.2 },
      training: { batchSize: 32, learningRate: 1e-3, epochs: 1, maxSteps: 5000, warmupSteps: 200 },
      system: { device: "cpu" },
    },
  },
  gpu_small: {
    description: "a GPU with 8 GB: Llama-style, 8 layers, 512 wide, ~34.1M parameters",
    config: {
      model: { modelType: "llama", vocabSize: 16384, numLayers: 8, numHeads: 8, embeddingDim: 512, maxSeqLength: 512, dropout: 0 },
      training: { batchSize: 32, learningRate: 6e-4, epochs: 1, maxSteps: 20000, warmupSteps: 500 },
      system: { device: "gpu" },
    },
  },
  gpu_medium: {
    description: "a GPU with 16-24 GB: Llama-style, 12 layers, 768 wide, ~109.5M parameters",
    config: {
      model: { modelType: "llama", vocabSize: 32000, numLayers: 12, numHeads: 12, embeddingDim: 768, maxSeqLength: 1024, dropout: 0 },
      training: { batchSize: 32, learningRate: 6e-4, epochs: 1, maxSteps: 50000, warmupSteps: 1000 },
      system: { device: "gpu" },
    },
  },
  gpu_large: {
    description: "a GPU with 40-80 GB: Llama-style, 24 layers, 1024 wide, ~336.4M parameters",
    config: {
      model: { modelType: "llama", vocabSize: 32000, numLayers: 24, numHeads: 16, embeddingDim: 1024, maxSeqLength: 2048, dropout: 0 },
      training: { batchSize: 64, learningRate: 3e-4, epochs: 1, maxSteps: 100000, warmupSteps: 2000 },
      system: { device: "gpu" },
    },
  },
};
