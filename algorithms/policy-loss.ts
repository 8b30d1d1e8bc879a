/**
 * Policy-gradient losses per token, by the name in config (`policy_loss`, verl's `policy_loss.loss_mode`);
 * user code adds its own with `registerPolicyLoss`. A loss sees the whole [B, T] batch with its response
 * mask and the objective's config, so sequence-level variants (GSPO's length-normalised sequence ratio)
 * and clipped-weight variants (CISPO's clipped importance weight) fit the same signature; `papoLoss`
 * aggregates `pg` with `loss_agg_mode` and reports the indicators as `actor/pg_clipfrac`,
 * `actor/pg_clipfrac_lower` and `actor/ppo_kl`.
 *
 * Built in: `ppo_clip` (verl's `vanilla`, accepted as an alias), the PPO clipped surrogate with asymmetric
 * clip and dual clip (docs/objective.md, "Ratio"):
 *
 *   r       = exp(clamp(l - l_old, -20, 20))
 *   r_clip  = exp(clamp(l - l_old, log(1 - eps_low), log(1 + eps_high)))
 *   pg      = max(-A r, -A r_clip);  for A < 0: pg = min(pg, -C A)   (dual clip)
 *
 * with the indicators `clipped` where the clipped branch binds (verl's pg_clipfrac), `dualClipped` where
 * the dual clip binds (pg_clipfrac_lower), and `negApproxKl` = clamp(l - l_old) (ppo_kl is its negated
 * masked mean).
 *
 * @example
 * // GSPO-style: one length-normalised ratio per sequence, clipped, applied to each of its tokens
 * registerPolicyLoss('gspo', ({ logprobs, oldLogprobs, advantages, responseMask }, cfg) => {
 *   const tokens = tf.maximum(tf.sum(responseMask, -1, true), 1);
 *   const seqLogRatio = tf.div(tf.sum(tf.mul(tf.sub(logprobs, oldLogprobs), responseMask), -1, true), tokens);
 *   const logRatio = tf.broadcastTo(seqLogRatio, logprobs.shape);
 *   const ratio = tf.exp(logRatio);
 *   const clippedRatio = tf.clipByValue(ratio, 1 - cfg.clip_ratio_low, 1 + cfg.clip_ratio_high);
 *   const [loss1, loss2] = [tf.mul(tf.neg(advantages), ratio), tf.mul(tf.neg(advantages), clippedRatio)];
 *   return { pg: tf.maximum(loss1, loss2), clipped: tf.cast(tf.greater(loss2, loss1), 'float32'), dualClipped: tf.zerosLike(ratio), negApproxKl: logRatio };
 * });
 */
import { tf } from '../util/tf-backend.ts';
import { Registry } from '../util/registry.ts';
import type { ObjectiveConfig } from './config.ts';

/** All [B, T]; padding positions hold 0 in every tensor but the mask. */
export interface PolicyLossInputs {
  /** log pi_theta of the sampled tokens; carries the gradient */
  logprobs: tf.Tensor;
  /** the same under the policy that sampled them (constants) */
  oldLogprobs: tf.Tensor;
  /** per-token advantages (constants) */
  advantages: tf.Tensor;
  /** 1 on valid response tokens, 0 on padding */
  responseMask: tf.Tensor;
}

/** All [B, T]. */
export interface PolicyLossTerms {
  /** per-token loss, aggregated by `loss_agg_mode` */
  pg: tf.Tensor;
  /** 1 where a clip binds (`actor/pg_clipfrac`) */
  clipped: tf.Tensor;
  /** 1 where the dual clip binds (`actor/pg_clipfrac_lower`); zeros for a loss without one */
  dualClipped: tf.Tensor;
  /** log pi_theta - log pi_old, clamped (`actor/ppo_kl` is minus its masked mean) */
  negApproxKl: tf.Tensor;
}

/** A policy-gradient loss. Runs inside `tf.tidy`; the gradient flows through `inputs.logprobs`. */
export type PolicyLoss = (inputs: PolicyLossInputs, config: ObjectiveConfig) => PolicyLossTerms;

export const policyLosses = new Registry<PolicyLoss>('policy loss', 'registerPolicyLoss');

/** Makes `name` a value of `policy_loss`; a name already registered is refused. */
export function registerPolicyLoss(name: string, loss: PolicyLoss): void {
  policyLosses.register(name, loss);
}

export interface ClipConfig {
  clip_ratio_low: number;
  clip_ratio_high: number;
  clip_ratio_dual: number;
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

registerPolicyLoss('ppo_clip', ({ logprobs, oldLogprobs, advantages }, cfg) => ppoClipLoss(logprobs, oldLogprobs, advantages, cfg));
policyLosses.alias('vanilla', 'ppo_clip');
