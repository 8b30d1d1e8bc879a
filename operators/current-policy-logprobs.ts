/**
 * Offline training on logged rollouts: the responses were sampled by another policy, so PPO's `old_log_prob`
 * is recomputed under the current weights (as verl recomputes it with the actor), and every response is
 * stamped with the current version; the masked-view and reference stages after it then score the logged
 * tokens under this run's policies.
 *
 * @example
 * loggedRolloutSource(log, task, steps, gate.grants$).pipe(currentPolicyLogprobs(engine), maskedViewLogprobs(engine, mask), ...)
 */
import { concatMap, type OperatorFunction } from 'rxjs';
import { addTiming, stageError, type RolloutEngine, type SampledBatch } from './types.ts';

export function currentPolicyLogprobs<T extends SampledBatch>(engine: Pick<RolloutEngine, 'logProbs' | 'version'>): OperatorFunction<T, T> {
  return concatMap(async (batch) => {
    const t0 = performance.now();
    try {
      const G = batch.groupSize;
      const r = await engine.logProbs({
        images: batch.responses.map((_, i) => batch.records[Math.floor(i / G)].image),
        prompts: batch.responses.map((_, i) => batch.records[Math.floor(i / G)].question),
        responses: batch.responses,
      });
      return {
        ...batch,
        oldLogprobs: r.logprobs,
        versions: new Int32Array(batch.responses.length).fill(r.version),
        timing: addTiming(batch.timing, 'old_log_prob', t0),
      };
    } catch (err) {
      throw stageError('currentPolicyLogprobs', batch, err);
    }
  });
}
