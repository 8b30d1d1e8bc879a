/**
 * Reward functions by the name users type in `worker.reward.score_function`: `composite` (the paper's
 * 0.9 accuracy + 0.1 format) and any that user code adds with `registerReward` before the config is
 * parsed. (A `.ts` / `.js` file named there instead is loaded by pipelines/reward-function.ts.)
 *
 * @example
 * registerReward('exact', defineReward('exact', (x) => {
 *   const hit = x.response.trim() === x.answer ? 1 : 0;
 *   return { overall: hit, accuracy: hit, format: 1 };
 * }));
 * // run config: worker.reward.score_function: exact
 */
import { Registry } from '../../util/registry.ts';
import { compositeReward } from './composite.ts';
import { isRewardFunction, type RewardFunction } from './types.ts';

export const rewardFunctions = new Registry<RewardFunction>('reward function', 'registerReward', (r) =>
  isRewardFunction(r) ? undefined : 'must be a reward made with defineReward or defineBatchReward',
);

/** Makes `name` a value of `worker.reward.score_function`; a name already registered is refused. */
export function registerReward(name: string, reward: RewardFunction): void {
  rewardFunctions.register(name, reward);
}

registerReward('composite', compositeReward());

/**
 * The rewards this package registers itself: they run in the calling thread. Any other reward is user code,
 * run in the reward workers (pool.ts) when papo can load it there.
 */
export const BUILT_IN_REWARDS: readonly string[] = ['composite'];
