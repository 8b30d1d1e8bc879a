/**
 * Outcome advantages from group rewards (PAPO-SPEC.md, "Advantage").
 *
 * Rewards arrive as [B] with B = numGroups * groupSize, each group's responses contiguous (the order in
 * which the sampler emits the G responses of a prompt). Estimators:
 * - grpo:    (R - mean) / (std + eps), std unbiased (n - 1)
 * - dr_grpo: R - mean                                  (no std division)
 * - rloo:    R - mean of the other G - 1 rewards = G / (G - 1) * (R - mean)
 * A group whose rewards are all equal gets exactly 0 (it carries no signal; DAPO's dynamic sampling drops
 * such groups). A group of one response has no baseline: its advantage is its reward, as in verl.
 */
import { tf } from '../util/tf-backend.ts';
import type { ADV_ESTIMATORS } from './config.ts';

export type AdvEstimator = (typeof ADV_ESTIMATORS)[number];

export interface AdvantageResult {
  /** [B] per-response advantages; `broadcastAdvantages` spreads them over tokens. */
  advantages: tf.Tensor1D;
  /** Number of groups whose rewards were all equal. */
  zeroVarianceGroups: number;
  numGroups: number;
}

export function groupAdvantages(
  rewards: tf.Tensor1D | ArrayLike<number>,
  groupSize: number,
  estimator: AdvEstimator,
  eps = 1e-6,
): AdvantageResult {
  const r = rewards instanceof tf.Tensor ? rewards : tf.tensor1d(Array.from(rewards), 'float32');
  try {
    const B = r.shape[0];
    if (!(Number.isInteger(groupSize) && groupSize >= 1)) throw new Error(`groupSize must be a positive integer, got ${groupSize}`);
    if (B % groupSize !== 0) throw new Error(`${B} rewards do not split into groups of ${groupSize}`);
    const numGroups = B / groupSize;
    let zeroVarianceGroups = 0;
    const advantages = tf.tidy(() => {
      const g = tf.reshape(r, [numGroups, groupSize]);
      if (groupSize === 1) return tf.reshape(g, [B]) as tf.Tensor1D;
      const mean = tf.mean(g, 1, true);
      const centred = tf.sub(g, mean);
      const constant = tf.equal(tf.max(g, 1, true), tf.min(g, 1, true));
      let adv: tf.Tensor;
      if (estimator === 'grpo') {
        const std = tf.sqrt(tf.div(tf.sum(tf.square(centred), 1, true), groupSize - 1));
        adv = tf.div(centred, tf.add(std, eps));
      } else if (estimator === 'dr_grpo') {
        adv = centred;
      } else if (estimator === 'rloo') {
        adv = tf.mul(centred, groupSize / (groupSize - 1));
      } else {
        throw new Error(`unknown advantage estimator '${String(estimator)}'`);
      }
      zeroVarianceGroups = (tf.sum(tf.cast(constant, 'int32')).dataSync()[0] as number) ?? 0;
      return tf.reshape(tf.where(tf.broadcastTo(constant, g.shape), tf.zerosLike(adv), adv), [B]) as tf.Tensor1D;
    });
    return { advantages, zeroVarianceGroups, numGroups };
  } finally {
    if (r !== rewards) r.dispose();
  }
}

/** [B] advantages -> [B, T] token advantages, zero on padding. */
export function broadcastAdvantages(adv: tf.Tensor1D, responseMask: tf.Tensor): tf.Tensor2D {
  return tf.tidy(() => tf.mul(tf.expandDims(adv, 1), responseMask) as tf.Tensor2D);
}
