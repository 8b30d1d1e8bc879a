/**
 * Loss aggregation over valid response tokens: the four `loss_agg_mode`s of verl.
 *
 * `lossMat` and `mask` are [B, T]; mask is 1 on valid response tokens and 0 on padding.
 * - token-mean: sum over all valid tokens / number of valid tokens (the PAPO default).
 * - seq-mean-token-mean: per sequence the token mean, then the mean over sequences that have tokens
 *   (the paper's printed equations).
 * - seq-mean-token-sum: per sequence the token sum, then the mean over sequences.
 * - seq-mean-token-sum-norm (Dr.GRPO): the sum over all valid tokens / `lossScaleFactor`, which defaults to
 *   the padded response length T (verl's choice; set it to the max response length for a constant normaliser).
 * An empty batch (no valid token) aggregates to 0, not NaN.
 */
import { tf } from '../util/tf-backend.ts';
import type { LOSS_AGG_MODES } from './config.ts';

export type LossAggMode = (typeof LOSS_AGG_MODES)[number];

export function aggregate(lossMat: tf.Tensor, mask: tf.Tensor, mode: LossAggMode, lossScaleFactor?: number): tf.Scalar {
  return tf.tidy(() => {
    const masked = tf.mul(lossMat, mask);
    switch (mode) {
      case 'token-mean':
        return tf.div(tf.sum(masked), tf.maximum(tf.sum(mask), 1)) as tf.Scalar;
      case 'seq-mean-token-mean': {
        const count = tf.sum(mask, -1);
        const seqMean = tf.div(tf.sum(masked, -1), tf.maximum(count, 1));
        const hasTokens = tf.cast(tf.greater(count, 0), 'float32');
        return tf.div(tf.sum(tf.mul(seqMean, hasTokens)), tf.maximum(tf.sum(hasTokens), 1)) as tf.Scalar;
      }
      case 'seq-mean-token-sum':
        return tf.mean(tf.sum(masked, -1)) as tf.Scalar;
      case 'seq-mean-token-sum-norm':
        return tf.div(tf.sum(masked), lossScaleFactor ?? (lossMat.shape[lossMat.rank - 1] as number)) as tf.Scalar;
      default:
        throw new Error(`unknown loss_agg_mode '${String(mode)}'`);
    }
  });
}

/** Mean over valid tokens: the reduction verl uses for diagnostics (clip fractions, ppo_kl) whatever the mode. */
export function maskedMean(x: tf.Tensor, mask: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.div(tf.sum(tf.mul(x, mask)), tf.maximum(tf.sum(mask), 1)) as tf.Scalar);
}
