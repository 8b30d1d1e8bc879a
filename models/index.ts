/**
 * Public entry point of the policy: its config and parameters, the tokenizer, the engine that samples and
 * computes log-probs (onnxruntime in a worker thread) and the trainers that update it (`createTrainer`:
 * onnxruntime or tfjs), with the AdamW config they take.
 */
export {
  policyConfig,
  policyDims,
  PolicyConfigSchema,
  POLICY_SIZES,
  type PolicyConfig,
  type PolicyConfigInput,
  type PolicyDims,
} from './config.ts';
export { initParams, paramCount, paramSpecs, validateParams, type Params, type ParamSpec } from './params.ts';
export { encode, decode, encodePrompt, encodeResponse, describeTokens, PAD_ID, EOS_ID, BOS_ID, VOCAB_SIZE } from './tokenizer.ts';
export { PolicyEngine } from './engine/engine.ts';
export { EXPORT_FORMAT, EXPORT_FORMAT_VERSION, EXPORT_METADATA_KEYS, exportMetadata } from './export-metadata.ts';
export { EXPORT_IO, exportGraphBuilder } from './onnx/export-graph.ts';
export type {
  EngineOptions,
  LogProbRequest,
  LogProbResult,
  PromptInput,
  SampledResponse,
  SampleRequest,
  SampleResult,
  WeightSlot,
} from './engine/types.ts';
export type { SamplingOptions } from './engine/sampler.ts';
export { createTrainer, autoEngine, type CreateTrainerOptions, type Trainer, type TrainerEngine, type TrainerEngineChoice } from './trainer/create.ts';
export type { LossFn, LossInputs, MicroBatchResult, TrainRows } from './trainer/types.ts';
export type { OrtTrainOptions } from './trainer/ort-train-runner.ts';
export {
  adamWConfig,
  learningRate,
  AdamWConfigSchema,
  LrScheduleSchema,
  type AdamWConfig,
  type AdamWConfigInput,
  type LrSchedule,
} from './adamw.ts';
