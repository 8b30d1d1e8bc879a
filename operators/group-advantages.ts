/**
 * Group-relative advantages of the rewards, with the estimator named in config (`algorithms/advantage.ts`:
 * grpo, dr_grpo, rloo, or one registered with `registerAdvEstimator`). The tensors live only inside this stage; the batch carries a Float32Array.
 *
 * @example
 * scored$.pipe(groupAdvantages({ estimator: 'grpo', eps: 1e-6 }))
 */
import { concatMap, type OperatorFunction } from 'rxjs';
import { estimateGroupAdvantages } from '../algorithms/advantage.ts';
import { addTiming, stageError, type Advantaged, type ScoredBatch } from './types.ts';

export interface GroupAdvantageOptions {
  /** a registered advantage estimator (`adv_estimator`) */
  estimator: string;
  /** added to the group std by grpo (`adv_eps`) */
  eps?: number;
}

export function groupAdvantages<T extends ScoredBatch>(opts: GroupAdvantageOptions): OperatorFunction<T, T & Advantaged> {
  return concatMap(async (batch) => {
    const t0 = performance.now();
    try {
      if (batch.rewards.length === 0) return { ...batch, advantages: new Float32Array(0), zeroVarianceGroups: 0 };
      const r = estimateGroupAdvantages(batch.rewards, batch.groupSize, opts.estimator, opts.eps);
      const advantages = Float32Array.from(r.advantages.dataSync());
      r.advantages.dispose();
      return { ...batch, advantages, zeroVarianceGroups: r.zeroVarianceGroups, timing: addTiming(batch.timing, 'adv', t0) };
    } catch (err) {
      throw stageError('groupAdvantages', batch, err);
    }
  });
}
