/**
 * The PPO clipped surrogate with asymmetric clip and dual clip, per token (PAPO-SPEC.md, "Ratio").
 *
 *   r       = exp(clamp(l - l_old, -20, 20))
 *   r_clip  = exp(clamp(l - l_old, log(1 - eps_low), log(1 + eps_high)))
 *   pg      = max(-A r, -A r_clip);  for A < 0: pg = min(pg, -C A)   (dual clip)
 *
 * Returns the per-token losses and the indicators behind the clip-fraction metrics:
 * `clipped` where the clipped branch binds (verl's pg_clipfrac), `dualClipped` where the dual clip binds
 * (pg_clipfrac_lower), and `negApproxKl` = clamp(l - l_old) (ppo_kl is its negated masked mean).
 */
import { tf } from '../util/tf-backend.ts';

export interface ClipConfig {
  clip_ratio_low: number;
  clip_ratio_high: number;
  clip_ratio_dual: number;
}

export interface PolicyLossTerms {
  pg: tf.Tensor;
  clipped: tf.Tensor;
  dualClipped: tf.Tensor;
  negApproxKl: tf.Tensor;
}

export function ppoClipLoss(logp: tf.Tensor, oldLogp: tf.Tensor, adv: tf.Tensor, cfg: ClipConfig): PolicyLossTerms {
  return tf.tidy(() => {
    const logRatio = tf.sub(logp, oldLogp);
    const negApproxKl = tf.clipByValue(logRatio, -20, 20);
    const ratio = tf.exp(negApproxKl);
    const clippedRatio = tf.exp(tf.clipByValue(logRatio, Math.log(1 - cfg.clip_ratio_low), Math.log(1 + cfg.clip_ratio_high)));
    const negAdv = tf.neg(adv);
    const loss1 = tf.mul(negAdv, ratio);
    const loss2 = tf.mul(negAdv, clippedRatio);
    const clipLoss = tf.maximum(loss1, loss2);
    const loss3 = tf.mul(negAdv, cfg.clip_ratio_dual);
    const isNeg = tf.less(adv, 0);
    const pg = tf.where(isNeg, tf.minimum(clipLoss, loss3), clipLoss);
    const clipped = tf.cast(tf.greater(loss2, loss1), 'float32');
    const dualClipped = tf.cast(tf.logicalAnd(tf.greater(clipLoss, loss3), isNeg), 'float32');
    return { pg, clipped, dualClipped, negApproxKl };
  });
}
