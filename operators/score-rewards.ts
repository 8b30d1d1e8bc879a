/**
 * Scores every response with a reward function through the failure-safe runner (tasks/rewards/runner.ts):
 * a throw, a bad value or a timeout becomes reward 0 and a recorded failure with the record id, counted
 * in the metrics; nothing is thrown into the stream. The reward is a function run in this thread, or a
 * scorer: the worker pool that runs user reward code (tasks/rewards/pool.ts).
 *
 * @example
 * sampled$.pipe(scoreRewards(compositeReward(), { timeoutMs: 10_000, concurrency: 32 }))
 */
import { concatMap, type OperatorFunction } from 'rxjs';
import { isRewardScorer, runReward, type RewardRunOptions, type RewardScorer } from '../tasks/rewards/runner.ts';
import type { RewardFunction, RewardInput } from '../tasks/rewards/types.ts';
import { addTiming, stageError, type SampledBatch, type ScoredGroups } from './types.ts';

export interface ScoreRewardsOptions {
  /** per call (a response, or a batch for batch reward functions); default 10 s */
  timeoutMs?: number;
  /** calls in flight at once for a per-response function; default 32 */
  concurrency?: number;
}

export function scoreRewards<T extends SampledBatch>(
  reward: RewardFunction | RewardScorer,
  opts: ScoreRewardsOptions = {},
): OperatorFunction<T, T & ScoredGroups> {
  const score = (inputs: readonly RewardInput[], o: RewardRunOptions) => (isRewardScorer(reward) ? reward.run(inputs, o) : runReward(reward, inputs, o));
  return concatMap(async (batch) => {
    const t0 = performance.now();
    try {
      const G = batch.groupSize;
      const run = await score(
        batch.texts.map((response, i) => {
          const r = batch.records[Math.floor(i / G)];
          return { id: r.id, response, answer: r.answer, question: r.question, family: r.family, meta: r.meta };
        }),
        { timeoutMs: opts.timeoutMs, concurrency: opts.concurrency ?? 32 },
      );
      return {
        ...batch,
        rewards: Float32Array.from(run.results, (r) => r.overall),
        accuracy: Float32Array.from(run.results, (r) => r.accuracy),
        format: Float32Array.from(run.results, (r) => r.format),
        rewardFailures: run.failures,
        timing: addTiming(batch.timing, 'reward', t0),
      };
    } catch (err) {
      throw stageError('scoreRewards', batch, err);
    }
  });
}
