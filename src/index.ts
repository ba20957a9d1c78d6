// kiln's public API: re-exports only.
export { createComputeBackend, backends, ComputeBackendRegistry, type BackendChoice } from "./backend/registry.ts";
export type { Backend, BackendName, BackendOptions, DeviceBuffer, MemoryStats } from "./backend/backend.ts";
export { KERNELS, KERNEL_NAMES, type KernelName } from "./backend/kernels.ts";
export { init } from "./init.ts";
export {
  Tensor, tensor, fromArray, zeros, ones, full, randn, rand, arange, empty, useBackend, withBackend, defaultBackend,
  type TensorOptions,
} from "./tensor/tensor.ts";
export type { DType } from "./tensor/dtype.ts";
export { scope, asyncScope, keep, dispose } from "./tensor/memory.ts";
export { Rng, seed, withRng } from "./tensor/random.ts";
export { noGrad, isGradEnabled, grad } from "./autograd/tape.ts";
export { checkpoint } from "./autograd/checkpoint.ts";
export { checkGradients, checkGradientsAsync } from "./autograd/check.ts";
export * as ops from "./ops/index.ts";
export {
  add, sub, mul, div, neg, pow, exp, log, sqrt, tanh, sigmoid, relu, gelu, silu, dropout,
  sum, mean, max, reshape, permute, transpose, expand, narrow, split, cat,
  matmul, linear, softmax, layerNorm, rmsNorm, attention, qkvAttention, rope, embedding, crossEntropy, cast, linearCrossEntropy,
} from "./ops/index.ts";
export { Module, ModuleList } from "./nn/module.ts";
export { withTraining, isTraining, withAutocast, isAutocast } from "./tensor/mode.ts";
export { Linear, Embedding, LayerNorm, RMSNorm, Dropout } from "./nn/layers.ts";
export { AdamW, type AdamWOptions } from "./optim/adamw.ts";
export { Optimizer, type ParamGroup, type OptimizerStateDict, type ParamState, type StepOptions } from "./optim/optimizer.ts";
export { SGD, type SGDOptions } from "./optim/sgd.ts";
export { gradNormSq, clipGradNorm } from "./optim/clip.ts";
export { warmupCosine } from "./optim/schedule.ts";
export { GPT, GPTConfig } from "./models/gpt.ts";
export {
  LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM, KVCache, BatchedKVCache, KVPool, createModel, MODEL_CLASSES,
  loadModelConfig, parseModelConfig, toHFConfig, loadPretrained, loadWeights, savePretrained,
  type KVCacheOptions, type ModelConfig, type GPT2Config, type LlamaConfig, type PretrainedModel,
  type GenerationConfig, type LoadOptions, type Pretrained, type SaveOptions,
  FAMILIES, familyByName, familyByArchitecture, type FamilyName, type ModelFamily, type GGUFNames,
} from "./models/index.ts";
export {
  generate, stream, streamTokens,
  type CausalLM, type GenerateOptions, type GenerateResult, type GenerateTimings,
} from "./models/generate.ts";
export { CharTokenizer, loadTokenizer, type Tokenizer, type EncodeOptions, type DecodeOptions } from "./data/tokenizer.ts";
export { trainBpe, trainBpeFiles, type BpeTrainOptions } from "./data/bpe_train.ts";
export { ChatTemplate, applyChatTemplate, loadChatTemplate, type ChatMessage, type ChatTemplateOptions } from "./data/chat_template.ts";
export { TokenDataset, type Batch, type Split } from "./data/dataset.ts";
export { readSafetensors, writeSafetensors, SafetensorsError, SafetensorsFile, type SafetensorsDType } from "./io/safetensors.ts";
export { writeFileAtomic, writeJsonAtomic } from "./io/atomic.ts";
export { saveCheckpoint, loadCheckpoint, hasCheckpoint } from "./io/checkpoint.ts";
export {
  Trainer, trainModel, taskLoss, accuracy, defaultOptimizer,
  type TrainerOptions, type TrainingResult, type Hooks, type BatchOutputs, type LossFn, type LossOutput, type BatchSource,
} from "./train/trainer.ts";
export { GenericTrainer, GenericTrainerConfig, type TrainingStep, type StepOutput, type Loader, type LrSchedule, type FitOptions } from "./train/engine.ts";
export { TrainingConfig, inferTask, type TaskSpec, type TaskType } from "./train/training_config.ts";
export { MultiDataLoaderConfig, SamplingStrategy, samplingOrder, EpochSampler } from "./train/sampling.ts";
export { DataLoader, TensorDataset, collate, type Dataset, type Example, type TensorBatch } from "./train/data_loader.ts";
export { jsonlExamples, tokenFileWindows } from "./train/streams.ts";
export { DataLoaderWorkerError, datasetFromModule, transformFromModule, type ModuleRef } from "./train/workers.ts";
export { lmTokens, tokenizeTransform, type LmTokensOptions } from "./train/transforms.ts";
export { EarlyStopping, LRMonitor, ProgressBar, type TrainerHooks, type HookTrainer } from "./train/hooks.ts";
export { MetricsSummary, type StoppedBy } from "./train/result.ts";
export { GradScaler, ampUnavailable } from "./train/amp.ts";
export { normalizeConfigKeys, KEY_ALIASES, RENAMED_KEYS } from "./train/config_keys.ts";
export { RunLoggers, recordsToCsv, type Logger } from "./train/loggers.ts";
export { TrainArgs } from "./train/args.ts";
// fine-tuning: LoRA, PEFT adapters, SFT/DPO losses
export { LoRALinear, type LoraOptions, type LoraAdapter } from "./nn/lora.ts";
export {
  applyLora, matchTargets, loraLayers, adapterNames, setAdapter, adapterParameters, disableAdapters,
  mergeAdapters, unmergeAdapters, mergeAndUnload, parameterCounts, formatParameterCounts, type LoraConfig, type MergeOptions,
} from "./nn/lora_model.ts";
export { saveAdapter, loadAdapter, readAdapterConfig, type PeftLoraConfig } from "./io/peft.ts";
export { readGguf, writeGguf, gguf, GGUFError, GGUFFile, type GGUFValue, type GGUFTensor, type GGUFTensorInfo } from "./io/gguf.ts";
export { exportGguf, GGUF_QUANTIZATIONS, type ExportGgufOptions, type GGUFQuantization } from "./io/gguf_export.ts";
export { exportGgufAdapter, GGUF_ADAPTER_TYPES, type ExportGgufAdapterOptions } from "./io/gguf_adapter.ts";
export { loadGguf, type LoadGgufOptions, type LoadedGguf } from "./io/gguf_load.ts";
export { quantize as ggmlQuantize, dequantize as ggmlDequantize, GGML_TYPES } from "./io/gguf_quants.ts";
export { maskedCrossEntropy, sequenceLogps, dpoLoss, logSigmoid, shiftLabels, IGNORE_INDEX, type DpoLossType } from "./train/losses.ts";
// serving: the OpenAI-compatible API
export { createServer, type KilnServer, type ModelEntry, type ServerOptions } from "./serve/server.ts";
export { loadServedModel, type LoadedModelEntry } from "./serve/load.ts";
export { Batcher, QueueFullError, type BatcherOptions, type SequenceRequest, type SequenceResult, type ServableModel } from "./serve/batcher.ts";
export { createBackend, BackendRegistry, FinetuneBackend, DeviceManager, type BackendConfig } from "./finetune/backend.ts";
export { ModelInterface } from "./finetune/model.ts";
export { SftTrainer } from "./finetune/sft.ts";
export { DpoTrainer } from "./finetune/dpo.ts";
export { SftConfig, DpoConfig } from "./finetune/config.ts";
export type { FinetuneResult } from "./finetune/run.ts";
// job queue and hyperparameter search (sqlite:// or postgres://)
export { JobQueue, JOB_STATUSES, type Job, type JobSpec, type JobStatus, type Claim } from "./jobs/queue.ts";
export { registerTask, getTask, taskNames, JobConfigError, type TaskContext, type TaskDefinition, type TaskProgress } from "./jobs/tasks.ts";
export { Worker, type WorkerOptions } from "./jobs/worker.ts";
export { createStudy, loadStudy, Study, Trial, TrialPruned, type StudyOptions, type OptimizeOptions } from "./jobs/study.ts";
export { RandomSampler, GridSampler, TPESampler, type Sampler, type FrozenTrial } from "./jobs/samplers.ts";
export { MedianPruner, SuccessiveHalvingPruner, NopPruner, type Pruner } from "./jobs/pruners.ts";
export { hyperparameterSearch, suggestSpace, writeStudyReport, PruningHook, type SearchSpace, type SearchOptions, type SearchResult } from "./jobs/search.ts";
export {
  BuilderConfig, loadConfig, parseConfig, validateConfig, fixConfig, toTrainingConfig, PRESETS, migrateLegacyConfig, buildModel,
  type ConfigProblem, type PresetName, type BuilderConfigInput,
  DocumentLoader, cleanText, dedupe, TextDataset, tokenizeFile, readTokenFile,
  saveModel, loadSavedModel, generateText, evaluateModel, exportBundle,
} from "./builder/index.ts";
