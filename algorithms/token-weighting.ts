/**
 * Token weighting / advantage shaping, by the name in config (`token_weighting`); user code adds its own
 * with `registerTokenWeighting`. It runs inside `papoLoss`, between the advantages and the policy loss:
 *
 *   w = weigh({ logprobs, oldLogprobs, maskedLogprobs, advantages, responseMask } [B, T], config, stats)
 *   pg = policyLoss(advantages = w.advantages ?? A) * (w.weights ?? 1),   then aggregated by loss_agg_mode
 *
 * - `advantages`: the per-token advantages the policy loss uses instead of A (shaping; the clip and the
 *   dual clip see them);
 * - `weights`: a per-token factor on the policy loss before aggregation; 0 takes a token out of the
 *   gradient while it still counts in the aggregation's denominator (VPPO's token filter);
 * - `metrics`: scalars reported under the names given (`actor/...`).
 * Only the policy-gradient term is weighted: the reference KL, perception and entropy terms see every token.
 * Everything a weighting sees is a constant: papoLoss hands over a copy of the values of `logprobs` (and of a
 * masked view recomputed with gradient) when it reads them, so a weighting is a weight, never a path for the
 * gradient.
 * Padding is zeroed in the inputs and in what a weighting returns.
 *
 * Options at registration:
 * - `needsMaskedLogprobs`: the weighting reads the masked view, so the masked-view stage runs even when
 *   PAPO's perception and masked-entropy weights are 0 (`needsMaskedLogprobs(cfg)` in config.ts decides);
 *   such a weighting reads the masked view as scored once per rollout step, so `recompute_masked_logprobs`
 *   is refused with it.
 * - `miniBatchStats`: numbers a weighting needs over all the rows of an optimizer step (a mini-batch), when
 *   the update splits it into micro-batches: `papoUpdate` computes them once per mini-batch from its
 *   constants and passes them to every micro-batch's `papoLoss` (`tokenWeightingStats`); `papoLoss` called
 *   alone computes them from its own inputs.
 *
 * Built in: `none` (nothing: the objective is the one without this stage, bit for bit) and `vppo`.
 *
 * @example
 * // Drop the policy gradient of every response's first token.
 * registerTokenWeighting('skip_first', ({ responseMask }) => ({
 *   weights: tf.concat([tf.zeros([responseMask.shape[0], 1]), tf.ones([responseMask.shape[0], responseMask.shape[1] - 1])], 1),
 * }));
 * objectiveConfig({ token_weighting: 'skip_first' });
 */
import { tf } from '../util/tf-backend.ts';
import { Registry } from '../util/registry.ts';
import type { ObjectiveConfig } from './config.ts';
import { broadcastAdvantages } from './advantage.ts';
import { klEstimate } from './kl.ts';

/** All [B, T] constants, padding zeroed. */
export interface TokenWeightingInputs {
  /** the current policy's log-probs of the sampled tokens (value only: the gradient is stopped) */
  logprobs: tf.Tensor;
  /** the same under the policy that sampled them */
  oldLogprobs: tf.Tensor;
  /** the same tokens scored on the masked image by the sampling policy (when the batch has them) */
  maskedLogprobs?: tf.Tensor;
  /** per-token advantages */
  advantages: tf.Tensor;
  /** 1 on valid response tokens, 0 on padding */
  responseMask: tf.Tensor;
}

/** What a mini-batch statistic sees: the inputs without the current log-probs (not computed yet). */
export type TokenWeightingStatsInputs = Omit<TokenWeightingInputs, 'logprobs'>;

/** Numbers over a whole mini-batch (`miniBatchStats`). */
export type TokenWeightingStats = Record<string, number>;

export interface TokenWeights {
  /** [B, T] advantages for the policy loss (default: unchanged) */
  advantages?: tf.Tensor;
  /** [B, T] factors on the per-token policy loss (default: 1) */
  weights?: tf.Tensor;
  /** scalars reported as metrics under these names */
  metrics?: Record<string, tf.Scalar>;
}

/** Runs inside `tf.tidy`. `stats` are the mini-batch's (`miniBatchStats`), or this call's own. */
export type TokenWeightingFn = (inputs: TokenWeightingInputs, config: ObjectiveConfig, stats: TokenWeightingStats) => TokenWeights;

export interface TokenWeightingOptions {
  /** reads `maskedLogprobs`: the masked-view stage must run */
  needsMaskedLogprobs?: boolean;
  /** numbers over all the rows of an optimizer step; may read tensor values (dataSync) */
  miniBatchStats?: (inputs: TokenWeightingStatsInputs, config: ObjectiveConfig) => TokenWeightingStats;
}

export interface TokenWeighting {
  weigh: TokenWeightingFn;
  needsMaskedLogprobs: boolean;
  miniBatchStats?: TokenWeightingOptions['miniBatchStats'];
}

export const tokenWeightings = new Registry<TokenWeighting>('token weighting', 'registerTokenWeighting', (v) =>
  typeof v?.weigh === 'function' ? undefined : 'must be a function',
);

/** Makes `name` a value of `token_weighting`; a name already registered is refused. */
export function registerTokenWeighting(name: string, weigh: TokenWeightingFn, options: TokenWeightingOptions = {}): void {
  if (typeof weigh !== 'function') throw new Error(`token weighting "${name}": must be a function, got ${typeof weigh}`);
  if (options.miniBatchStats !== undefined && typeof options.miniBatchStats !== 'function')
    throw new Error(`token weighting "${name}": miniBatchStats must be a function`);
  tokenWeightings.register(name, { weigh, needsMaskedLogprobs: options.needsMaskedLogprobs ?? false, miniBatchStats: options.miniBatchStats });
}

/**
 * The mini-batch statistics of the weighting named in `config` over these rows ({} when it has none).
 * `advantages` may be [B] (per response) or [B, T]; padding may hold anything: it is zeroed first.
 */
export function tokenWeightingStats(config: ObjectiveConfig, inputs: TokenWeightingStatsInputs): TokenWeightingStats {
  const { miniBatchStats } = tokenWeightings.get(config.token_weighting);
  if (!miniBatchStats) return {};
  return tf.tidy(() => {
    const valid = tf.greater(inputs.responseMask, 0);
    const zeros = tf.zeros(inputs.responseMask.shape);
    const clean = (x: tf.Tensor) => tf.where(valid, x, zeros);
    const stats = miniBatchStats(
      {
        oldLogprobs: clean(inputs.oldLogprobs),
        maskedLogprobs: inputs.maskedLogprobs && clean(inputs.maskedLogprobs),
        advantages: clean(inputs.advantages.rank === 1 ? broadcastAdvantages(inputs.advantages as tf.Tensor1D, inputs.responseMask) : inputs.advantages),
        responseMask: inputs.responseMask,
      },
      config,
    );
    for (const [k, v] of Object.entries(stats ?? {}))
      if (typeof v !== 'number') throw new Error(`token weighting "${config.token_weighting}": miniBatchStats returned ${k} = ${String(v)}, not a number`);
    return stats ?? {};
  });
}

registerTokenWeighting('none', () => ({}));

// ---------------------------------------------------------------------------------------------------------
// VPPO (Visually-Perceptive Policy Optimization; Huang et al., "Spotlight on Token Perception for Multimodal
// Reinforcement Learning", arXiv 2510.09285), as its reference implementation computes it
// (github.com/huaixuheqing/VPPO-RL at a23c54b, verl/workers/actor/dp_actor.py `update_policy`: the mini-batch
// range lines 266-298, dependency and top-k mask 398-426, advantage shaping 483-535, entropy penalty 564-568;
// verl/trainer/core_algos.py 495-499 applies the mask; settings in examples/configs/train_vppo_7b.sh):
//
// 1. Per-token visual dependency, detached: the k3 estimate on the sampled token between the original and
//    the masked view, both under the SAMPLING policy (the reference's `old_log_probs` and `aug_log_probs`,
//    the latter scored once per rollout step by the pre-update actor):
//      d = clamp(m - l_old, -20, 20);  dep = clamp(exp(d) - d - 1, 0, 10)
//    The paper defines the dependency as the KL between the full next-token distributions on the original
//    and the masked image; the reference code (and this one: the loss has no vocabulary-wide distributions)
//    uses this single-sample k3 estimate of it, the estimator of PAPO's kl_prcp.
// 2. Token gradient filter, PER RESPONSE: the k = ceil(n * vppo_top_token_ratio) valid tokens of highest
//    dependency (n = the response's valid tokens; k computed in float32 as the reference does) keep their
//    policy-gradient loss, the others get weight 0 (they still count in the token mean's denominator: the
//    reference multiplies the per-token loss by the mask, then averages over all valid tokens). Ties at the
//    cut go to the earlier token (the reference's unstable torch.sort leaves them unspecified).
// 3. Trajectory advantage shaping: s_i = mean dependency of response i over its valid tokens; over the
//    MINI-BATCH (all rows of the optimizer step, with at least 2 non-empty responses; else no shaping)
//    s_min, s_max; if s_max - s_min > 1e-6:
//      u_i = clamp((s_i - s_min) / (s_max - s_min), 0, 1)
//      mu = mean of u_i over the MICRO-BATCH's non-empty responses
//      hi = floor + (1 - floor) / (mu + 1e-8)
//      scale_i = floor + u_i * (hi - floor)        (floor = vppo_adv_floor)
//    so the least dependent response of the mini-batch gets `floor` and the scales average 1 over the
//    micro-batch (to a relative 1e-8): it is not a map onto [floor, 1], and the top is not bounded (a
//    response with u = 1 gets 1 + (1 - floor) (1 - mu) / mu). Responses' advantages are multiplied by their
//    scale before the policy loss (so the PPO clip and dual clip see the shaped advantage).
// 4. The reference's entropy penalty (`use_entropy_penalty`, coefficient 0.06 for the 7B run) adds
//    coef * token-mean(-l) to the loss, over all tokens: that is `entropy_coef_original`, set by the preset.
//    The KL to the reference policy is over all tokens too. Its entropy-based token filter
//    (`use_vppo_on_entropy`) is off in the paper's runs and not implemented here.
// ---------------------------------------------------------------------------------------------------------

/** VPPO's per-token dependency [B, T]: k3(l_old, m) clamped to [0, 10], 0 on padding. */
export function vppoDependency(oldLogprobs: tf.Tensor, maskedLogprobs: tf.Tensor, responseMask: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.maximum(klEstimate(oldLogprobs, maskedLogprobs, 'k3'), 0), tf.cast(tf.greater(responseMask, 0), 'float32')));
}

/** Per-response mean dependency [B] (0 for an empty response) and the number of valid tokens [B]. */
function vppoScores(dep: tf.Tensor, responseMask: tf.Tensor): { score: tf.Tensor; count: tf.Tensor } {
  const count = tf.sum(tf.cast(tf.greater(responseMask, 0), 'float32'), 1);
  return { score: tf.div(tf.sum(dep, 1), tf.maximum(count, 1)), count };
}

function needMasked(m: tf.Tensor | undefined): tf.Tensor {
  if (!m) throw new Error('token_weighting vppo needs maskedLogprobs (log-probs of the same tokens on the masked image)');
  return m;
}

registerTokenWeighting(
  'vppo',
  ({ oldLogprobs, maskedLogprobs, advantages, responseMask }, cfg, stats) => {
    const [B, T] = responseMask.shape as [number, number];
    const valid = tf.greater(responseMask, 0);
    const dep = vppoDependency(oldLogprobs, needMasked(maskedLogprobs), responseMask);
    const { score, count } = vppoScores(dep, responseMask);

    // 2. Top-k tokens of each response: k-th largest dependency as the threshold, ties at it taken in order.
    const k = tf.ceil(tf.mul(count, cfg.vppo_top_token_ratio)); // [B], float32 as in the reference
    const ranked = tf.where(valid, dep, tf.fill([B, T], -1)); // padding below every valid value (>= 0)
    const sorted = tf.topk(ranked, T, true).values;
    const kthIndex = tf.sub(tf.cast(k, 'int32'), tf.scalar(1, 'int32')); // -1 for an empty response: a zero one-hot row
    const threshold = tf.sum(tf.mul(sorted, tf.oneHot(kthIndex, T)), 1, true); // [B, 1]
    const above = tf.logicalAnd(valid, tf.greater(ranked, threshold));
    const tie = tf.logicalAnd(valid, tf.equal(ranked, threshold));
    const room = tf.sub(tf.expandDims(k, 1), tf.sum(tf.cast(above, 'float32'), 1, true)); // tied tokens still to take
    const tieOrder = tf.cumsum(tf.cast(tie, 'float32'), 1);
    const selected = tf.cast(tf.logicalOr(above, tf.logicalAnd(tie, tf.lessEqual(tieOrder, room))), 'float32');

    // 3. Advantage scale per response.
    const nonEmpty = tf.cast(tf.greater(count, 0), 'float32');
    const rows = tf.maximum(tf.sum(nonEmpty), 1);
    let scale: tf.Tensor = tf.onesLike(score);
    const { dependency_min: lo, dependency_max: hi } = stats;
    if (lo !== undefined && hi !== undefined && hi - lo > 1e-6) {
      const floor = cfg.vppo_adv_floor;
      const u = tf.clipByValue(tf.div(tf.sub(score, lo), hi - lo), 0, 1);
      const mu = tf.div(tf.sum(tf.mul(u, nonEmpty)), rows);
      const top = tf.add(floor, tf.div(1 - floor, tf.add(mu, 1e-8)));
      const mapped = tf.add(floor, tf.mul(u, tf.sub(top, floor)));
      scale = tf.where(tf.greater(count, 0), mapped, scale);
    }
    const kept = tf.sum(tf.cast(tf.greater(k, 0), 'float32'));
    return {
      advantages: tf.mul(advantages, tf.expandDims(scale, 1)),
      weights: selected,
      metrics: {
        'actor/vppo_token_fraction': tf.div(tf.sum(selected), tf.maximum(tf.sum(count), 1)) as tf.Scalar,
        'actor/vppo_adv_scale_mean': tf.div(tf.sum(tf.mul(scale, nonEmpty)), rows) as tf.Scalar,
        'actor/vppo_adv_scale_max': tf.max(tf.mul(scale, nonEmpty)) as tf.Scalar,
        'actor/vppo_dependency_threshold': tf.div(tf.sum(tf.mul(tf.squeeze(threshold, [1]), nonEmpty)), tf.maximum(kept, 1)) as tf.Scalar,
      },
    };
  },
  {
    needsMaskedLogprobs: true,
    miniBatchStats: ({ oldLogprobs, maskedLogprobs, responseMask }): TokenWeightingStats => {
      const values = tf.tidy(() => {
        const { score, count } = vppoScores(vppoDependency(oldLogprobs, needMasked(maskedLogprobs), responseMask), responseMask);
        return tf.stack([score, count]);
      });
      const [score, count] = values.arraySync() as number[][];
      values.dispose();
      const scores = score.filter((_, i) => count[i] > 0);
      if (scores.length < 2) return {};
      return { dependency_min: Math.min(...scores), dependency_max: Math.max(...scores) };
    },
  },
);
