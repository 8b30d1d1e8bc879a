/** Public entry point of the tasks package: datasets, streams, rewards, the manifest and dataset loaders, dataset export and previews. */
export * from './types.ts';
export * from './text.ts';
export { RecordStream, epochOrder, type StreamCursor, type StreamOptions } from './stream.ts';
export { DigitsTask, type DigitsOptions } from './digits/task.ts';
export { DIGIT_FAMILIES } from './digits/families.ts';
export { ScenesTask, type ScenesOptions } from './scenes/task.ts';
export { SCENE_FAMILIES } from './scenes/families.ts';
export { createTask, registerTask, taskFactories, type TaskConfig, type TaskFactory, type TaskOptions } from './registry.ts';
export { formatReward, parseResponse } from './rewards/format.ts';
export { accuracyReward, extractAnswer, normalizeAnswer } from './rewards/accuracy.ts';
export { compositeReward, scoreResponse, PAPER_WEIGHTS, type CompositeWeights } from './rewards/composite.ts';
export * from './rewards/types.ts';
export { registerReward, rewardFunctions } from './rewards/registry.ts';
export {
  runReward,
  inThreadScorer,
  REWARD_BOUND,
  type RewardFailure,
  type RewardFailureKind,
  type RewardRun,
  type RewardRunOptions,
  type RewardScorer,
} from './rewards/runner.ts';
export { RewardPool, type RewardPoolOptions } from './rewards/pool.ts';
export { loadManifest, ManifestError, type ManifestOptions, type ManifestIssue, type LoadedManifest } from './loader/manifest.ts';
export { ManifestTask, type ManifestTaskOptions } from './loader/manifest-task.ts';
export {
  loadDataset,
  DatasetError,
  type DatasetOptions,
  type DatasetIssue,
  type DatasetRecord,
  type LoadedDataset,
} from './loader/dataset.ts';
export { DatasetTask } from './loader/dataset-task.ts';
export { exportDataset, type ExportOptions, type ExportFormat, type ExportedSplit } from './loader/dataset-export.ts';
export { resizeImage, resizeToFit, type ResizeMethod } from './loader/resize.ts';
export { decodeImage } from './loader/decode.ts';
export { loadImage, type LoadImageOptions } from './loader/load-image.ts';
export { renderContactSheet, writeContactSheet, encodePng } from './preview/contact-sheet.ts';
export { accuracyReport, type AccuracyReport } from './accuracy-report.ts';
export {
  ERROR_CLASSES,
  classifyFailure,
  errorTable,
  grammarClassifier,
  type ErrorCell,
  type ErrorClass,
  type ErrorClassification,
  type ErrorClassifier,
  type ErrorTable,
  type TraceGrammar,
} from './error-taxonomy.ts';
export { sampleRecords, splitStats, type SplitStats } from './inspect.ts';
export { MixtureTask } from './mixture.ts';
