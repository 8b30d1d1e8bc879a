/**
 * Outcome advantages from group rewards (docs/objective.md, "Advantage"), with the estimator named in config
 * (`adv_estimator`) looked up in a registry that user code can add to (`registerAdvEstimator`).
 *
 * Rewards arrive as [B] with B = numGroups * groupSize, each group's responses contiguous (the order in
 * which the sampler emits the G responses of a prompt). Built-in estimators:
 * - grpo:    (R - mean) / (std + eps), std unbiased (n - 1), eps = `adv_eps`
 * - dr_grpo: R - mean                                  (no std division)
 * - rloo:    R - mean of the other G - 1 rewards = G / (G - 1) * (R - mean)
 * Whatever the estimator, a group whose rewards are all equal gets exactly 0 (it carries no signal; DAPO's
 * dynamic sampling drops such groups), and a group of one response has no baseline: its advantage is its
 * reward, as in verl.
 *
 * @example
 * registerAdvEstimator('max_baseline', (g) => tf.sub(g, tf.max(g, 1, true)));
 * estimateGroupAdvantages([1, 0, 0, 1], 4, 'max_baseline').advantages;   // [0, -1, -1, 0]
 */
import { tf } from '../util/tf-backend.ts';
import { Registry } from '../util/registry.ts';

export interface AdvantageOptions {
  /** `adv_eps`: added to the group std by `grpo` */
  eps: number;
}

/**
 * An advantage estimator: the rewards of whole groups, [numGroups, G] with G >= 2 (row i holds the G
 * responses of prompt i), to advantages of the same shape. Runs inside `tf.tidy`.
 */
export type AdvantageEstimator = (groupRewards: tf.Tensor2D, options: AdvantageOptions) => tf.Tensor;

export const advantageEstimators = new Registry<AdvantageEstimator>('advantage estimator', 'registerAdvEstimator');

/** Makes `name` a value of `adv_estimator`; a name already registered is refused. */
export function registerAdvEstimator(name: string, estimator: AdvantageEstimator): void {
  advantageEstimators.register(name, estimator);
}

registerAdvEstimator('grpo', (g, { eps }) => {
  const centred = tf.sub(g, tf.mean(g, 1, true));
  const std = tf.sqrt(tf.div(tf.sum(tf.square(centred), 1, true), g.shape[1] - 1));
  return tf.div(centred, tf.add(std, eps));
});
registerAdvEstimator('dr_grpo', (g) => tf.sub(g, tf.mean(g, 1, true)));
registerAdvEstimator('rloo', (g) => tf.mul(tf.sub(g, tf.mean(g, 1, true)), g.shape[1] / (g.shape[1] - 1)));

export interface AdvantageResult {
  /** [B] per-response advantages; `broadcastAdvantages` spreads them over tokens. */
  advantages: tf.Tensor1D;
  /** Number of groups whose rewards were all equal. */
  zeroVarianceGroups: number;
  numGroups: number;
}

export function estimateGroupAdvantages(rewards: tf.Tensor1D | ArrayLike<number>, groupSize: number, estimator: string, eps = 1e-6): AdvantageResult {
  const estimate = advantageEstimators.get(estimator);
  const r = rewards instanceof tf.Tensor ? rewards : tf.tensor1d(Array.from(rewards), 'float32');
  try {
    const B = r.shape[0];
    if (!(Number.isInteger(groupSize) && groupSize >= 1)) throw new Error(`groupSize must be a positive integer, got ${groupSize}`);
    if (B % groupSize !== 0) throw new Error(`${B} rewards do not split into groups of ${groupSize}`);
    const numGroups = B / groupSize;
    let zeroVarianceGroups = 0;
    const advantages = tf.tidy(() => {
      const g = tf.reshape(r, [numGroups, groupSize]) as tf.Tensor2D;
      if (groupSize === 1) return tf.reshape(g, [B]) as tf.Tensor1D;
      const constant = tf.equal(tf.max(g, 1, true), tf.min(g, 1, true));
      const adv = estimate(g, { eps });
      if (!(adv instanceof tf.Tensor) || adv.shape.length !== 2 || adv.shape[0] !== numGroups || adv.shape[1] !== groupSize) {
        const got = adv instanceof tf.Tensor ? `shape [${adv.shape}]` : typeof adv;
        throw new Error(`advantage estimator "${estimator}" returned ${got}, expected a tensor of shape [${numGroups}, ${groupSize}]`);
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
