/**
 * Public entry point of the objective: its config, the loss, advantages, masking, and the registries that
 * user code extends by name (`registerAdvEstimator`, `registerPolicyLoss`, `registerKlEstimator`,
 * `registerLossAggMode`, `registerMaskType`, `registerTokenWeighting`), with `tf`, the tensor library their
 * signatures use.
 */
export { tf } from '../util/tf-backend.ts';
export {
  objectiveConfig,
  needsMaskedLogprobs,
  ObjectiveConfigSchema,
  PRESETS,
  type ObjectiveConfig,
  type ObjectiveConfigInput,
  type PresetName,
} from './config.ts';
export { papoLoss, type PapoLossInputs, type PapoLossOptions, type PapoLossResult, type PapoMetricName } from './papo-loss.ts';
export {
  estimateGroupAdvantages,
  broadcastAdvantages,
  registerAdvEstimator,
  advantageEstimators,
  type AdvantageEstimator,
  type AdvantageOptions,
  type AdvantageResult,
} from './advantage.ts';
export {
  ppoClipLoss,
  registerPolicyLoss,
  policyLosses,
  type PolicyLoss,
  type PolicyLossInputs,
  type PolicyLossTerms,
  type ClipConfig,
} from './policy-loss.ts';
export { klEstimate, registerKlEstimator, klEstimators, tokenKlPrcp, meanKlPrcp, padRows, type KlEstimator } from './kl.ts';
export {
  registerTokenWeighting,
  tokenWeightings,
  tokenWeightingStats,
  vppoDependency,
  type TokenWeighting,
  type TokenWeightingFn,
  type TokenWeightingInputs,
  type TokenWeightingOptions,
  type TokenWeightingStats,
  type TokenWeightingStatsInputs,
  type TokenWeights,
} from './token-weighting.ts';
export { aggregate, maskedMean, registerLossAggMode, lossAggModes, type LossAggregation, type AggregationOptions } from './aggregate.ts';
export {
  drawPatchGrid,
  applyPatchGrid,
  randomPatchMask,
  registerMaskType,
  maskTypes,
  type MaskFunction,
  type PatchGrid,
  type PatchMaskOptions,
} from './masking.ts';
