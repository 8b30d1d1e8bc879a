/**
 * Loss aggregation over valid response tokens, by the name in config (`loss_agg_mode`); user code adds
 * its own with `registerLossAggMode`. The four modes of verl are built in:
 *
 * `lossMat` and `mask` are [B, T]; mask is 1 on valid response tokens and 0 on padding.
 * - token-mean: sum over all valid tokens / number of valid tokens (the PAPO default).
 * - seq-mean-token-mean: per sequence the token mean, then the mean over sequences that have tokens
 *   (the paper's printed equations).
 * - seq-mean-token-sum: per sequence the token sum, then the mean over sequences.
 * - seq-mean-token-sum-norm (Dr.GRPO): the sum over all valid tokens / `lossScaleFactor`, which defaults to
 *   the padded response length T (verl's choice; set it to the max response length for a constant normaliser).
 * An empty batch (no valid token) aggregates to 0, not NaN.
 *
 * @example
 * registerLossAggMode('token-sum', (x, mask) => tf.sum(tf.mul(x, mask)) as tf.Scalar);
 * objectiveConfig({ loss_agg_mode: 'token-sum' });
 */
import { tf } from '../util/tf-backend.ts';
import { Registry } from '../util/registry.ts';

export interface AggregationOptions {
  /** `loss_scale_factor`: the divisor of `seq-mean-token-sum-norm`; default the padded length T */
  lossScaleFactor?: number;
}

/** Reduces a [B, T] per-token loss to a scalar over the tokens where `mask` is 1. Runs inside `tf.tidy`. */
export type LossAggregation = (lossMat: tf.Tensor, mask: tf.Tensor, options: AggregationOptions) => tf.Scalar;

export const lossAggModes = new Registry<LossAggregation>('loss aggregation mode', 'registerLossAggMode');

/** Makes `name` a value of `loss_agg_mode`; a name already registered is refused. */
export function registerLossAggMode(name: string, aggregation: LossAggregation): void {
  lossAggModes.register(name, aggregation);
}

registerLossAggMode('token-mean', (lossMat, mask) => tf.div(tf.sum(tf.mul(lossMat, mask)), tf.maximum(tf.sum(mask), 1)) as tf.Scalar);
registerLossAggMode('seq-mean-token-mean', (lossMat, mask) => {
  const count = tf.sum(mask, -1);
  const seqMean = tf.div(tf.sum(tf.mul(lossMat, mask), -1), tf.maximum(count, 1));
  const hasTokens = tf.cast(tf.greater(count, 0), 'float32');
  return tf.div(tf.sum(tf.mul(seqMean, hasTokens)), tf.maximum(tf.sum(hasTokens), 1)) as tf.Scalar;
});
registerLossAggMode('seq-mean-token-sum', (lossMat, mask) => tf.mean(tf.sum(tf.mul(lossMat, mask), -1)) as tf.Scalar);
registerLossAggMode(
  'seq-mean-token-sum-norm',
  (lossMat, mask, { lossScaleFactor }) => tf.div(tf.sum(tf.mul(lossMat, mask)), lossScaleFactor ?? (lossMat.shape[lossMat.rank - 1] as number)) as tf.Scalar,
);

/** The loss aggregated with the named mode. */
export function aggregate(lossMat: tf.Tensor, mask: tf.Tensor, mode: string, lossScaleFactor?: number): tf.Scalar {
  const aggregation = lossAggModes.get(mode);
  return tf.tidy(() => {
    const out = aggregation(lossMat, mask, { lossScaleFactor });
    if (!(out instanceof tf.Tensor) || out.rank !== 0)
      throw new Error(`loss aggregation mode "${mode}" returned ${out instanceof tf.Tensor ? `shape [${out.shape}]` : typeof out}, expected a scalar tensor`);
    return out;
  });
}

/** Mean over valid tokens: the reduction verl uses for diagnostics (clip fractions, ppo_kl) whatever the mode. */
export function maskedMean(x: tf.Tensor, mask: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.div(tf.sum(tf.mul(x, mask)), tf.maximum(tf.sum(mask), 1)) as tf.Scalar);
}
