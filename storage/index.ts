/**
 * Public entry point of storage (layouts in storage/README.md): policy weights, their ONNX export and the shipped warm start,
 * training checkpoints, the rollout log, TensorBoard event files, and the background writer that keeps
 * their disk work off the main thread.
 */
export { loadPolicyWeights, savePolicyWeights, paramsFingerprint, type SavedPolicy } from './policy-weights.ts';
export { exportPolicyOnnx, policyOnnxBytes, type ExportResult } from './policy-export.ts';
export { warmStartPath, loadWarmStart } from './warm-start.ts';
export { CheckpointStore, type Checkpoint, type SavedCheckpoint } from './checkpoints.ts';
export { RolloutLog, type RolloutStepRecord } from './rollout-log.ts';
export { registerBatchField, batchFields, type BatchField } from './batch-schema.ts';
export {
  TensorBoardWriter,
  readEventFile,
  eventFiles,
  type EventFileContents,
  type TensorBoardEvent,
  type TensorBoardWriterOptions,
} from './tensorboard.ts';
export { BackgroundWriter } from './background-writer.ts';
export { ChecksumError } from './crc32c.ts';
