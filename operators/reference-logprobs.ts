/**
 * Log-probs of the sampled tokens under the frozen reference policy (the starting weights, installed in
 * the engine with `setReferenceWeights`), for the reference KL (`kl_coef` > 0). With `kl_coef` 0 the
 * graph has no such stage and no reference model at all.
 *
 * @example
 * await engine.setReferenceWeights(startParams);
 * masked$.pipe(referenceLogprobs(engine))
 */
import { concatMap, type OperatorFunction } from 'rxjs';
import { type LogprobPassOptions, logProbsAtSamplingVersion } from './masked-view-logprobs.ts';
import { addTiming, stageError, type ReferenceScored, type RolloutEngine, type SampledBatch } from './types.ts';

export function referenceLogprobs<T extends SampledBatch>(
  engine: Pick<RolloutEngine, 'logProbs'>,
  opts: LogprobPassOptions = {},
): OperatorFunction<T, T & ReferenceScored> {
  return concatMap(async (batch) => {
    const t0 = performance.now();
    try {
      const refLogprobs = await logProbsAtSamplingVersion(
        engine,
        batch,
        batch.records.map((r) => r.image),
        'reference',
        opts,
      );
      return { ...batch, refLogprobs, timing: addTiming(batch.timing, 'ref', t0) };
    } catch (err) {
      throw stageError('referenceLogprobs', batch, err);
    }
  });
}
