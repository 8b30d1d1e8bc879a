/**
 * Per-token KL estimators between the current policy (log-probs `logp`) and another policy (`logq`),
 * evaluated on tokens sampled from the behaviour policy (Schulman's k1/k2/k3).
 *
 * - k1 (`kl`):          logp - logq
 * - k2 (`mse`):         0.5 * (logp - logq)^2
 * - k3 (`low_var_kl`):  d = clamp(logq - logp, -20, 20); exp(d) - d - 1, clamped to [-10, 10]
 * - abs:                |logp - logq|
 * The clamps are those of PAPO-SPEC.md (and verl): they bound the estimate and zero its gradient outside.
 */
import { tf } from '../util/tf-backend.ts';
import type { KL_ESTIMATORS } from './config.ts';

export type KlEstimator = (typeof KL_ESTIMATORS)[number];

export function klEstimate(logp: tf.Tensor, logq: tf.Tensor, estimator: KlEstimator): tf.Tensor {
  return tf.tidy(() => {
    switch (estimator) {
      case 'k1':
        return tf.sub(logp, logq);
      case 'k2':
        return tf.mul(0.5, tf.square(tf.sub(logp, logq)));
      case 'k3': {
        const d = tf.clipByValue(tf.sub(logq, logp), -20, 20);
        return tf.clipByValue(tf.sub(tf.sub(tf.exp(d), d), 1), -10, 10);
      }
      case 'abs':
        return tf.abs(tf.sub(logp, logq));
      default:
        throw new Error(`unknown KL estimator '${String(estimator)}'`);
    }
  });
}
