/**
 * The log-prob stages after scoring, as the objective needs them: the masked view (`mask` given) and the
 * reference log-probs (`reference`). With both and `fused` (`worker.rollout.fused_logprobs`) they are one
 * engine call (operators/masked-reference-logprobs.ts), else the two stages in turn; `sharePrefix`
 * (`worker.rollout.share_prefix`) computes each prompt's prefix once for its G responses.
 *
 * @example
 * scored$.pipe(viewLogprobs(engine, { mask: { ratio: 0.6, patchSize: 14 }, reference: true, fused: true, sharePrefix: true }))
 */
import { identity, type OperatorFunction, pipe } from 'rxjs';
import { maskedReferenceLogprobs } from './masked-reference-logprobs.ts';
import { maskedViewLogprobs, type MaskedViewOptions } from './masked-view-logprobs.ts';
import { referenceLogprobs } from './reference-logprobs.ts';
import type { MaskedViews, ReferenceScored, RolloutEngine, SampledBatch } from './types.ts';

export interface ViewLogprobsOptions {
  mask?: MaskedViewOptions;
  reference: boolean;
  /** the masked view and the reference in one engine call (default false) */
  fused?: boolean;
  /** shared prompt prefixes in the teacher-forced passes (default false) */
  sharePrefix?: boolean;
}

export function viewLogprobs<T extends SampledBatch>(
  engine: Pick<RolloutEngine, 'logProbs' | 'logProbViews'>,
  opts: ViewLogprobsOptions,
): OperatorFunction<T, T & Partial<MaskedViews & ReferenceScored>> {
  const pass = opts.sharePrefix ? { sharePrefix: true } : {};
  if (opts.mask && opts.reference && opts.fused) return maskedReferenceLogprobs<T>(engine, { ...opts.mask, ...pass });
  const masked = (opts.mask ? maskedViewLogprobs<T>(engine, { ...opts.mask, ...pass }) : identity) as OperatorFunction<T, T & Partial<MaskedViews>>;
  const reference = (opts.reference ? referenceLogprobs<T & Partial<MaskedViews>>(engine, pass) : identity) as OperatorFunction<
    T & Partial<MaskedViews>,
    T & Partial<MaskedViews & ReferenceScored>
  >;
  return pipe(masked, reference);
}
