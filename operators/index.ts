/** The stages of the RL graph (one factory per file) and the records they pass along. */
export * from './types.ts';
export { CreditGate, type Grant, type CreditGateOptions } from './credit-gate.ts';
export { promptBatches, batchSeed, type PromptBatchOptions } from './prompt-batches.ts';
export { sampleGroups, type SampleGroupsOptions } from './sample-groups.ts';
export { scoreRewards, type ScoreRewardsOptions } from './score-rewards.ts';
export { keepInformativeGroups, type KeepInformativeOptions } from './keep-informative-groups.ts';
export { maskedViewLogprobs, maskedImages, type MaskedViewOptions } from './masked-view-logprobs.ts';
export { referenceLogprobs } from './reference-logprobs.ts';
export { groupAdvantages, type GroupAdvantageOptions } from './group-advantages.ts';
export { PolicyVersions, type VersionListener, type VersionsCheckpoint, type RestoreOptions } from './policy-versions.ts';
export { papoUpdate, type PapoUpdateOptions, type TrainedStep } from './papo-update.ts';
export { selectGroups, concatGroups, groupMeans } from './groups.ts';
export { batchMetrics, meanMetrics, type Metrics } from './step-metrics.ts';
export { watchLossHacking, type LossHackingOptions, type LossHackingAlarm } from './watch-loss-hacking.ts';
export { loggedRollouts, loggedRolloutSource, batchFromLog } from './logged-rollouts.ts';
export { currentPolicyLogprobs } from './current-policy-logprobs.ts';
