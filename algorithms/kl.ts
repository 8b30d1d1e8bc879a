/**
 * Per-token KL estimators between the current policy (log-probs `logp`) and another policy (`logq`),
 * evaluated on tokens sampled from the behaviour policy (Schulman's k1/k2/k3), by the name in config
 * (`kl_estimator`); user code adds its own with `registerKlEstimator`. Built-in (verl's spellings accepted):
 *
 * - k1 (`kl`):          logp - logq
 * - k2 (`mse`):         0.5 * (logp - logq)^2
 * - k3 (`low_var_kl`):  d = clamp(logq - logp, -20, 20); exp(d) - d - 1, clamped to [-10, 10]
 * - abs:                |logp - logq|
 * The clamps are those of docs/objective.md (and verl): they bound the estimate and zero its gradient outside.
 * The implicit perception loss always uses k3.
 *
 * @example
 * registerKlEstimator('k2_half', (logp, logq) => tf.mul(0.25, tf.square(tf.sub(logp, logq))));
 * objectiveConfig({ kl_estimator: 'k2_half' });
 */
import { tf } from '../util/tf-backend.ts';
import { Registry } from '../util/registry.ts';

/** A per-token KL estimate from two [B, T] log-prob tensors, of the same shape. Runs inside `tf.tidy`. */
export type KlEstimator = (logp: tf.Tensor, logq: tf.Tensor) => tf.Tensor;

export const klEstimators = new Registry<KlEstimator>('KL estimator', 'registerKlEstimator');

/** Makes `name` a value of `kl_estimator`; a name already registered is refused. */
export function registerKlEstimator(name: string, estimator: KlEstimator): void {
  klEstimators.register(name, estimator);
}

registerKlEstimator('k1', (logp, logq) => tf.sub(logp, logq));
registerKlEstimator('k2', (logp, logq) => tf.mul(0.5, tf.square(tf.sub(logp, logq))));
registerKlEstimator('k3', (logp, logq) => {
  const d = tf.clipByValue(tf.sub(logq, logp), -20, 20);
  return tf.clipByValue(tf.sub(tf.sub(tf.exp(d), d), 1), -10, 10);
});
registerKlEstimator('abs', (logp, logq) => tf.abs(tf.sub(logp, logq)));
klEstimators.alias('kl', 'k1');
klEstimators.alias('mse', 'k2');
klEstimators.alias('low_var_kl', 'k3');

/** The named estimator of KL(p || q) per token. */
export function klEstimate(logp: tf.Tensor, logq: tf.Tensor, estimator: string): tf.Tensor {
  const estimate = klEstimators.get(estimator);
  return tf.tidy(() => estimate(logp, logq));
}

/** Rows of per-token values right-padded with 0 (or cut) to T: a row-major [rows, T] matrix. */
export function padRows(rows: readonly ArrayLike<number>[], T: number): Float32Array {
  const out = new Float32Array(rows.length * T);
  rows.forEach((r, i) => out.set(Array.from(r).slice(0, T), i * T));
  return out;
}

/** `padRows` as a [rows, T] tensor. */
function padded(rows: readonly ArrayLike<number>[], T: number): tf.Tensor2D {
  return tf.tensor2d(padRows(rows, T), [rows.length, T]);
}

/** k3(original, masked) per token: the implicit perception loss's kl_prcp, as a [R, T] matrix (T = the longest length). */
function k3Matrix(original: readonly ArrayLike<number>[], masked: readonly ArrayLike<number>[], T: number): tf.Tensor {
  return klEstimate(padded(original, T), padded(masked, T), 'k3');
}

/** Per-token kl_prcp of each response: k3 between its log-probs on the original and on the masked image. */
export function tokenKlPrcp(original: readonly Float32Array[], masked: readonly Float32Array[]): Float32Array[] {
  const T = Math.max(1, ...original.map((r) => r.length));
  const flat = tf.tidy(() => k3Matrix(original, masked, T).dataSync() as Float32Array);
  return original.map((r, i) => flat.slice(i * T, i * T + r.length));
}

/** Mean kl_prcp of each response over its first `lengths[i]` tokens: how much the image matters to it. */
export function meanKlPrcp(original: readonly ArrayLike<number>[], masked: readonly ArrayLike<number>[], lengths: readonly number[]): Float32Array {
  const T = Math.max(1, ...lengths);
  const perRow = tf.tidy(() => {
    const mask = padded(
      lengths.map((n) => new Float32Array(n).fill(1)),
      T,
    );
    const kl = tf.mul(k3Matrix(original, masked, T), mask);
    return tf.div(tf.sum(kl, 1), tf.maximum(tf.sum(mask, 1), 1));
  });
  const values = Float32Array.from(perRow.dataSync());
  perRow.dispose();
  return values;
}
