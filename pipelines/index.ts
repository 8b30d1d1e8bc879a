/**
 * Public entry point of the ready compositions: `runTrain` (the RL graph wired from one run config, what
 * `papo train` runs), `runSft` (the warm start), `evaluate`, `generateAnswers` (one question about one image), `replayRun`, the report and the rollout sheets.
 */
export { runTrain, type TrainHooks, type TrainOptions, type TrainOutcome, type TrainResult } from './train.ts';
export { describeConfig, trainConfig, TrainConfigSchema, type TrainConfig, type TrainConfigInput } from './train-config.ts';
export { runSft, type SftOptions, type SftResult, type SftStepRecord } from './sft.ts';
export { describeSftConfig, sftConfig, SftConfigSchema, upgradeSftConfig, type SftConfig, type SftConfigInput } from './sft-config.ts';
export {
  evaluate,
  formatEvalReport,
  formatErrorReport,
  type DecodingReport,
  type ErrorExample,
  type ErrorReport,
  type EvalOptions,
  type EvalReport,
  type GroupStats,
} from './evaluate.ts';
export { encodeQuestion, generateAnswers, readQuestionImage, type GenerateOptions, type GeneratedAnswer } from './generate.ts';
export { replayRun, type ReplayReport } from './replay.ts';
export { loadRun, writeReport, type ReportOptions, type ReportResult, type RunData } from './report.ts';
export { writeRolloutSheet, type RolloutSheetRequest } from './rollout-sheet.ts';
export { loadRewardFunction, openReward, type OpenRewardOptions } from './reward-function.ts';
