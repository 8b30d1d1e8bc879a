/**
 * The rollout segment: the stages of the graph that need a policy engine and a reward, in the order the
 * graph runs them: `sampleGroups -> scoreRewards -> maskedViewLogprobs -> referenceLogprobs`. It is what
 * one shard of a sampling round computes (operators/shard-rollouts.ts), in this process or on a rollout
 * worker (`papo worker`): the same code in both places, so where a shard runs never changes its result.
 * Its options are plain data (a shard job carries them to a worker).
 *
 * @example
 * shards$.pipe(rolloutSegment(engine, compositeReward(), { sample: { n: 8, temperature: 0.7 }, reward: {}, mask: { ratio: 0.6, patchSize: 14 }, reference: true, logprobs: { fused: true, sharePrefix: true } }))
 */
import type { OperatorFunction } from 'rxjs';
import type { RewardScorer } from '../tasks/rewards/runner.ts';
import type { RewardFunction } from '../tasks/rewards/types.ts';
import type { MaskedViewOptions } from './masked-view-logprobs.ts';
import { sampleGroups, type SampleGroupsOptions } from './sample-groups.ts';
import { scoreRewards, type ScoreRewardsOptions } from './score-rewards.ts';
import type { MaskedViews, PromptBatch, ReferenceScored, RolloutEngine, ScoredBatch } from './types.ts';
import { viewLogprobs } from './view-logprobs.ts';

export interface RolloutSegmentOptions {
  /** `sampleGroups`' options (its seed is the batch's, its version `versionOf`'s) */
  sample: Omit<SampleGroupsOptions, 'seedOf' | 'versionOf'>;
  reward: ScoreRewardsOptions;
  /** the masked view, when the objective reads it (`needsMaskedLogprobs`) */
  mask?: MaskedViewOptions;
  /** reference log-probs (`kl_coef` > 0) */
  reference: boolean;
  /** how the log-prob passes run (operators/view-logprobs.ts); absent: two calls, full passes */
  logprobs?: { fused?: boolean; sharePrefix?: boolean };
}

/** What the segment adds to a prompt batch. */
export type RolloutShard = ScoredBatch & Partial<MaskedViews & ReferenceScored>;

export function rolloutSegment(
  engine: Pick<RolloutEngine, 'sample' | 'logProbs' | 'logProbViews'>,
  reward: RewardFunction | RewardScorer,
  opts: RolloutSegmentOptions,
  versionOf?: (batch: PromptBatch) => number,
): OperatorFunction<PromptBatch, RolloutShard> {
  const logprobs = opts.logprobs ?? {};
  if (logprobs.fused !== undefined && typeof logprobs.fused !== 'boolean')
    throw new Error(`rolloutSegment: logprobs.fused must be a boolean, got ${logprobs.fused}`);
  if (logprobs.sharePrefix !== undefined && typeof logprobs.sharePrefix !== 'boolean')
    throw new Error(`rolloutSegment: logprobs.sharePrefix must be a boolean, got ${logprobs.sharePrefix}`);
  const views: OperatorFunction<ScoredBatch, RolloutShard> = viewLogprobs(engine, { mask: opts.mask, reference: opts.reference, ...logprobs });
  return (batches) => batches.pipe(sampleGroups(engine, { ...opts.sample, ...(versionOf ? { versionOf } : {}) }), scoreRewards(reward, opts.reward), views);
}
