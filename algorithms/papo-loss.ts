/**
 * The PAPO objective, the one place it is written (docs/objective.md, "Terms" and "Aggregation"):
 *
 *   L = [ AGG(pg) + beta * AGG(kl_ref) - gamma * AGG(kl_prcp) + eta1 * AGG(-l) + eta2 * AGG(-m) ] / accum
 *
 * with pg the policy loss named by `policy_loss` (the clipped surrogate by default), kl_ref = k(l, l_ref)
 * (the estimator named by `kl_estimator`), AGG the `loss_agg_mode`, kl_prcp = k3(l, m)
 * (the implicit perception loss, maximised, hence the minus), and -l, -m the sampled-token entropy
 * estimates on the original and masked image (the double entropy loss, which pushes both down).
 * GRPO is this with gamma = eta1 = eta2 = 0; DAPO additionally has beta = 0 (no reference model).
 * A token weighting (`token_weighting`, algorithms/token-weighting.ts; `none` by default) may shape the
 * advantages the policy loss sees and weight pg per token before AGG (VPPO); it is a constant weight.
 *
 * Gradient flows only through `logprobs` (and through `maskedLogprobs` if the caller computed it with
 * gradient, the `recompute_masked_logprobs` option); the other inputs are treated as constants.
 */
import { tf } from '../util/tf-backend.ts';
import { aggregate, maskedMean } from './aggregate.ts';
import { broadcastAdvantages } from './advantage.ts';
import type { ObjectiveConfig } from './config.ts';
import { klEstimate } from './kl.ts';
import { policyLosses, type PolicyLossTerms } from './policy-loss.ts';
import { tokenWeightings, tokenWeightingStats, type TokenWeights, type TokenWeightingStats } from './token-weighting.ts';

export interface PapoLossInputs {
  /** [B, T] log pi_theta of the sampled tokens on the original image; carries the gradient. */
  logprobs: tf.Tensor;
  /** [B, T] the same under the policy that sampled the rollout. */
  oldLogprobs: tf.Tensor;
  /** [B, T] the same under the frozen reference policy; required when kl_coef > 0. */
  refLogprobs?: tf.Tensor;
  /**
   * [B, T] the same tokens scored with the masked image; required when perception_loss_weight or
   * entropy_coef_masked > 0 or the token weighting reads it (`needsMaskedLogprobs(config)`).
   */
  maskedLogprobs?: tf.Tensor;
  /** [B] per-response or [B, T] per-token advantages. */
  advantages: tf.Tensor;
  /** [B, T] 1 on valid response tokens, 0 on padding. */
  responseMask: tf.Tensor;
}

export interface PapoLossOptions {
  /** The loss is divided by this (gradient accumulation over micro-batches); metrics are not. */
  gradAccumSteps?: number;
  /**
   * The token weighting's statistics over the whole mini-batch this call is a micro-batch of
   * (`tokenWeightingStats`, what papoUpdate passes); default: those of this call's own rows.
   */
  tokenWeightingStats?: TokenWeightingStats;
}

/** Metric names as verl / EasyR1 / the PAPO code log them. */
export type PapoMetricName =
  | 'actor/pg_loss'
  | 'actor/pg_clipfrac'
  | 'actor/pg_clipfrac_lower'
  | 'actor/ppo_kl'
  | 'actor/kl_loss'
  | 'actor/kl_prcp_loss'
  | 'actor/entropy_loss'
  | 'actor/aug_entropy_loss'
  | 'actor/loss';

export interface PapoLossResult {
  /** Scalar loss to differentiate (already divided by gradAccumSteps). */
  loss: tf.Scalar;
  /**
   * Plain numbers, read in one device sync. `actor/kl_loss` is present when kl_coef > 0,
   * `actor/kl_prcp_loss` (= -kl_prcp) and `actor/aug_entropy_loss` when masked log-probs are given;
   * a token weighting adds its own (`actor/vppo_token_fraction`, ...).
   */
  metrics: Partial<Record<PapoMetricName, number>> & { [name: string]: number | undefined };
}

function checkShape(name: string, t: tf.Tensor | undefined, shape: number[]): void {
  if (t && (t.rank !== shape.length || t.shape.some((d, i) => d !== shape[i]))) {
    throw new Error(`papoLoss: ${name} has shape [${t.shape}], expected [${shape}]`);
  }
}

/** A copy of `x`'s values that the gradient tape knows nothing of (tfjs has no stop-gradient op). */
const detached = (x: tf.Tensor) => tf.tensor(x.dataSync(), x.shape, x.dtype);

function checkWeights(name: string, w: TokenWeights, shape: number[]): void {
  if (typeof w !== 'object' || w === null) throw new Error(`papoLoss: token weighting "${name}" returned ${String(w)}, expected an object`);
  for (const k of ['advantages', 'weights'] as const) {
    const t = w[k];
    if (t !== undefined && (!(t instanceof tf.Tensor) || t.rank !== shape.length || t.shape.some((d, i) => d !== shape[i]))) {
      throw new Error(
        `papoLoss: token weighting "${name}" returned ${k} ${t instanceof tf.Tensor ? `of shape [${t.shape}]` : typeof t}, expected a tensor of shape [${shape}]`,
      );
    }
  }
  for (const [k, t] of Object.entries(w.metrics ?? {})) {
    if (!(t instanceof tf.Tensor) || t.rank !== 0) throw new Error(`papoLoss: token weighting "${name}" returned metric ${k} that is not a scalar tensor`);
  }
}

function checkTerms(name: string, terms: PolicyLossTerms, shape: number[]): void {
  for (const k of ['pg', 'clipped', 'dualClipped', 'negApproxKl'] as const) {
    const t = terms?.[k];
    if (!(t instanceof tf.Tensor) || t.rank !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new Error(
        `papoLoss: policy loss "${name}" returned ${k} ${t instanceof tf.Tensor ? `of shape [${t.shape}]` : typeof t}, expected a tensor of shape [${shape}]`,
      );
    }
  }
}

export function papoLoss(inputs: PapoLossInputs, config: ObjectiveConfig, options: PapoLossOptions = {}): PapoLossResult {
  const { logprobs, oldLogprobs, refLogprobs, maskedLogprobs, advantages, responseMask } = inputs;
  const accum = options.gradAccumSteps ?? 1;
  if (!(Number.isInteger(accum) && accum >= 1)) throw new Error(`papoLoss: gradAccumSteps must be a positive integer, got ${accum}`);
  if (logprobs.rank !== 2) throw new Error(`papoLoss: logprobs must be [B, T], got shape [${logprobs.shape}]`);
  const shape = logprobs.shape;
  checkShape('oldLogprobs', oldLogprobs, shape);
  checkShape('refLogprobs', refLogprobs, shape);
  checkShape('maskedLogprobs', maskedLogprobs, shape);
  checkShape('responseMask', responseMask, shape);
  if (advantages.rank === 1) checkShape('advantages', advantages, [shape[0]]);
  else checkShape('advantages', advantages, shape);

  const beta = config.kl_coef;
  const gamma = config.perception_loss_weight;
  const eta1 = config.entropy_coef_original;
  const eta2 = config.entropy_coef_masked;
  if (beta > 0 && !refLogprobs)
    throw new Error('papoLoss: kl_coef > 0 needs refLogprobs (the reference policy log-probs); set kl_coef 0 to train without a reference model');
  if ((gamma > 0 || eta2 > 0) && !maskedLogprobs) {
    throw new Error('papoLoss: perception_loss_weight or entropy_coef_masked > 0 needs maskedLogprobs (log-probs of the same tokens on the masked image)');
  }
  const weighting = tokenWeightings.get(config.token_weighting);
  if (weighting.needsMaskedLogprobs && !maskedLogprobs) {
    throw new Error(`papoLoss: token_weighting ${config.token_weighting} needs maskedLogprobs (log-probs of the same tokens on the masked image)`);
  }
  const policyLoss = policyLosses.get(config.policy_loss);
  const mode = config.loss_agg_mode;
  const agg = (x: tf.Tensor) => aggregate(x, responseMask, mode, config.loss_scale_factor);

  // The token weighting's mini-batch statistics: given by the caller (papoUpdate), else of these rows.
  const stats =
    options.tokenWeightingStats ??
    (weighting.miniBatchStats ? tf.tidy(() => tokenWeightingStats(config, { oldLogprobs, maskedLogprobs, advantages, responseMask })) : {});

  const names: string[] = [];
  const { loss, stacked } = tf.tidy(() => {
    const values: tf.Scalar[] = [];
    const metric = (name: string, v: tf.Scalar) => {
      names.push(name);
      values.push(v);
    };
    // Padding may hold anything an engine wrote there (-inf, NaN): zero it before any arithmetic, so
    // neither the loss nor the gradient can see it (a masked product would turn NaN * 0 into NaN).
    const valid = tf.greater(responseMask, 0);
    const zeros = tf.zeros(shape); // not zerosLike(logprobs): that would tie every input to the gradient path
    const clean = (x: tf.Tensor) => tf.where(valid, x, zeros);
    const lp = clean(logprobs);
    const old = clean(oldLogprobs);
    const ref = refLogprobs && clean(refLogprobs);
    const masked = maskedLogprobs && clean(maskedLogprobs);
    const adv = clean(advantages.rank === 1 ? broadcastAdvantages(advantages as tf.Tensor1D, responseMask) : advantages);
    // Token weighting (`none`: returns nothing, and nothing below changes). Its inputs carry no gradient:
    // the current log-probs (and a masked view recomputed with gradient) are copied when it reads them.
    let lpValue: tf.Tensor | undefined;
    let maskedValue: tf.Tensor | undefined;
    const weights = weighting.weigh(
      {
        get logprobs() {
          lpValue ??= detached(lp);
          return lpValue;
        },
        oldLogprobs: old,
        get maskedLogprobs() {
          if (!masked || !config.recompute_masked_logprobs) return masked;
          maskedValue ??= detached(masked);
          return maskedValue;
        },
        advantages: adv,
        responseMask,
      },
      config,
      stats,
    );
    checkWeights(config.token_weighting, weights, shape);
    const terms = policyLoss({ logprobs: lp, oldLogprobs: old, advantages: weights.advantages ? clean(weights.advantages) : adv, responseMask }, config);
    checkTerms(config.policy_loss, terms, shape);
    const { clipped, dualClipped, negApproxKl } = terms;
    const pg = weights.weights ? tf.mul(terms.pg, clean(weights.weights)) : terms.pg;
    const pgLoss = agg(pg);
    let total: tf.Scalar = pgLoss;
    metric('actor/pg_loss', pgLoss);
    metric('actor/pg_clipfrac', maskedMean(clipped, responseMask));
    metric('actor/pg_clipfrac_lower', maskedMean(dualClipped, responseMask));
    metric('actor/ppo_kl', tf.neg(maskedMean(negApproxKl, responseMask)));
    for (const [name, v] of Object.entries(weights.metrics ?? {})) metric(name, v);

    if (ref) {
      const klLoss = agg(klEstimate(lp, ref, config.kl_estimator));
      metric('actor/kl_loss', klLoss);
      if (beta > 0) total = tf.add(total, tf.mul(beta, klLoss));
    }
    const entropy = agg(tf.neg(lp));
    metric('actor/entropy_loss', entropy);
    if (eta1 > 0) total = tf.add(total, tf.mul(eta1, entropy));
    if (masked) {
      const klPrcp = agg(klEstimate(lp, masked, 'k3'));
      metric('actor/kl_prcp_loss', tf.neg(klPrcp));
      if (gamma > 0) total = tf.sub(total, tf.mul(gamma, klPrcp));
      const augEntropy = agg(tf.neg(masked));
      metric('actor/aug_entropy_loss', augEntropy);
      if (eta2 > 0) total = tf.add(total, tf.mul(eta2, augEntropy));
    }
    metric('actor/loss', total);
    // Metrics leave as one stacked tensor so they are read with a single device sync.
    return { loss: (accum === 1 ? total : tf.div(total, accum)) as tf.Scalar, stacked: tf.stack(values) };
  });

  const data = stacked.dataSync();
  stacked.dispose();
  const metrics: PapoLossResult['metrics'] = {};
  names.forEach((n, i) => (metrics[n] = data[i]));
  return { loss, metrics };
}
