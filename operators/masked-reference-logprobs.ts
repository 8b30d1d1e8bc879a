/**
 * The masked view and the reference log-probs of a batch in one engine call (`worker.rollout.fused_logprobs`):
 * the same requests as `maskedViewLogprobs` and `referenceLogprobs` (one per sampling version on the masked
 * images, one under the reference weights on the original images) sent together with `logProbViews`, so the
 * engine runs them back to back without a hand-off between stages. The results are those of the two stages,
 * bit for bit. The call's time is split between `timing_s/masked_log_prob` and `timing_s/ref` in halves (both score every response).
 *
 * @example
 * scored$.pipe(maskedReferenceLogprobs(engine, { ratio: 0.6, patchSize: 14, sharePrefix: true }))
 */
import { concatMap, type OperatorFunction } from 'rxjs';
import type { LogProbRequest, LogProbResult } from '../models/engine/types.ts';
import { mixSeed } from '../util/rng.ts';
import { type LogprobPassOptions, logProbRequests, type MaskedViewOptions, maskedImages, placeLogprobs } from './masked-view-logprobs.ts';
import { noteStage } from './stage-clock.ts';
import { stageError, type MaskedViews, type ReferenceScored, type RolloutEngine, type SampledBatch } from './types.ts';

/** One call when the engine has `logProbViews`, else the requests one after another (the same results). */
async function runViews(engine: Pick<RolloutEngine, 'logProbs' | 'logProbViews'>, requests: LogProbRequest[]): Promise<LogProbResult[]> {
  if (engine.logProbViews) return engine.logProbViews(requests);
  const out: LogProbResult[] = [];
  for (const r of requests) out.push(await engine.logProbs(r));
  return out;
}

export function maskedReferenceLogprobs<T extends SampledBatch>(
  engine: Pick<RolloutEngine, 'logProbs' | 'logProbViews'>,
  opts: MaskedViewOptions & LogprobPassOptions,
): OperatorFunction<T, T & MaskedViews & ReferenceScored> {
  return concatMap(async (batch) => {
    const t0 = performance.now();
    try {
      const maskSeed = mixSeed(batch.seed, 'mask');
      const images = maskedImages(
        batch.records.map((r) => r.image),
        maskSeed,
        opts,
        batch.promptOffset ?? 0,
      );
      const masked = logProbRequests(batch, images, undefined, opts);
      const reference = logProbRequests(
        batch,
        batch.records.map((r) => r.image),
        'reference',
        opts,
      );
      const results = await runViews(engine, [...masked.requests, ...reference.requests]);
      const N = batch.responses.length;
      const maskedLogprobs = placeLogprobs(N, masked.rows, results.slice(0, masked.requests.length));
      const refLogprobs = placeLogprobs(N, reference.rows, results.slice(masked.requests.length));
      const t1 = performance.now();
      noteStage('masked_log_prob+ref', t0, t1);
      // Both views score every response: the call's time in halves.
      const half = (t1 - t0) / 2000;
      const timing = { ...batch.timing, masked_log_prob: (batch.timing.masked_log_prob ?? 0) + half, ref: (batch.timing.ref ?? 0) + half };
      return { ...batch, maskSeed, maskedImages: images, maskedLogprobs, refLogprobs, timing };
    } catch (err) {
      throw stageError('maskedReferenceLogprobs', batch, err);
    }
  });
}
