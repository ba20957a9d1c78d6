// The LLM builder: structured configs with presets and legacy migration, model building.
export { BuilderConfig, BuilderConfigSchema, ModelSection, TrainingSection, SystemSection, loadConfig, parseConfig, readConfigFile, validateConfig, fixConfig, toTrainingConfig, type ConfigProblem, type BuilderConfigInput, type ModelSectionValues, type TrainingSectionValues, type SystemSectionValues } from "./config.ts";
export { PRESETS, type PresetName, type Preset } from "./presets.ts";
export { isLegacyConfig, migrateLegacyObject, migrateLegacyConfig } from "./legacy.ts";
export { buildModel, hfConfigOf, formatCount } from "./build.ts";
export { DocumentLoader, formatReport, type DocumentLoaderOptions, type FileReport, type LoadedDocuments } from "./documents.ts";
export { cleanText, removeBoilerplate } from "./clean.ts";
export { dedupe, minhash, shingles, type DedupeOptions, type DedupeResult } from "./dedupe.ts";
export { TextDataset, TokenWindows, readTokenFile, type TextDatasetOptions } from "./text_dataset.ts";
export { tokenizeFile } from "./tokenize_file.ts";
export { saveModel, loadSavedModel, generateText, type SaveModelOptions, type SavedModel, type GenerateTextRequest } from "./saved_model.ts";
export { evaluateModel, type Evaluation, type EvaluateOptions } from "./evaluate.ts";
export { exportBundle, type ExportBundleOptions, type BundleResult } from "./bundle.ts";
