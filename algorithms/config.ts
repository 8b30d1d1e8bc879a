/**
 * The objective's configuration: every knob of PAPO / GRPO / DAPO, with the defaults of docs/objective.md and the
 * names users of verl / EasyR1 know. Validation rejects nonsense with a message naming the key. The
 * estimator, loss and aggregation keys take the names registered when the config is parsed (built-in, or
 * added by user code with `registerAdvEstimator`, `registerPolicyLoss`, `registerKlEstimator`,
 * `registerLossAggMode`, `registerMaskType`, `registerTokenWeighting`).
 */
import { z } from 'zod';
import { parseConfig } from '../util/schema.ts';
import { advantageEstimators } from './advantage.ts';
import { lossAggModes } from './aggregate.ts';
import { klEstimators } from './kl.ts';
import { maskTypes } from './masking.ts';
import { policyLosses } from './policy-loss.ts';
import { tokenWeightings } from './token-weighting.ts';

const nonNeg = () => z.number().finite().nonnegative();

export const ObjectiveConfigSchema = z
  .object({
    /** Group advantage estimator (algorithms/advantage.ts). */
    adv_estimator: advantageEstimators.name().default('grpo'),
    /** Added to the group std in `grpo`. */
    adv_eps: z.number().finite().positive().default(1e-6),
    /** Per-token policy-gradient loss (algorithms/policy-loss.ts; verl's `policy_loss.loss_mode`, `vanilla` accepted). */
    policy_loss: policyLosses.name().default('ppo_clip'),
    /** PPO clip: the ratio is clipped to [1 - clip_ratio_low, 1 + clip_ratio_high]. */
    clip_ratio_low: nonNeg().lt(1).default(0.2),
    clip_ratio_high: nonNeg().default(0.3),
    /** Dual clip constant C: for negative advantages the per-token loss is capped at -C * A. */
    clip_ratio_dual: z.number().finite().gt(1).default(3.0),
    /** beta: weight of the reference-policy KL; 0 means no reference model at all. */
    kl_coef: nonNeg().default(0.01),
    /** Estimator of the reference KL: k1, k2 (mse), k3 (low_var_kl), abs. verl names are accepted. */
    kl_estimator: klEstimators.name().default('k3'),
    /** gamma: weight of the implicit perception loss (maximised KL between original and masked views). */
    perception_loss_weight: nonNeg().default(0),
    /** eta1: weight of -log-prob (sampled-token entropy) on the original image. */
    entropy_coef_original: nonNeg().default(0),
    /** eta2: weight of -log-prob on the masked image. */
    entropy_coef_masked: nonNeg().default(0),
    /** Recompute masked-view log-probs with the current weights and gradient (off: once per rollout step). */
    recompute_masked_logprobs: z.boolean().default(false),
    /** Per-token weights / shaped advantages of the policy-gradient term (algorithms/token-weighting.ts): `none`, `vppo`. */
    token_weighting: tokenWeightings.name().default('none'),
    /** VPPO: share of each response's tokens, the most vision-dependent, that keep the policy gradient (`top_p_perception_tokens`). */
    vppo_top_token_ratio: z.number().finite().gt(0).max(1).default(0.4),
    /** VPPO: advantage scale of the mini-batch's least vision-dependent response (`advantage_scaling_min`); the scales average 1. */
    vppo_adv_floor: z.number().finite().min(0).max(1).default(0.9),
    /** Aggregation of per-token losses (algorithms/aggregate.ts). */
    loss_agg_mode: lossAggModes.name().default('token-mean'),
    /** Divisor of `seq-mean-token-sum-norm` (Dr.GRPO); default: the padded response length of the batch. */
    loss_scale_factor: z.number().finite().positive().optional(),
    /** How the masked view is made (algorithms/masking.ts). */
    mask_type: maskTypes.name().default('random_patch'),
    /** Probability that each patch of the raw image is blackened. */
    mask_ratio: z.number().finite().min(0).max(1).default(0.6),
    /** Side of the square patches of the mask, in raw pixels. */
    mask_patch_size: z.number().int().positive().default(14),
    /** DAPO dynamic sampling: keep groups whose mean accuracy lies strictly inside this range. */
    dynamic_sampling: z.boolean().default(false),
    dynamic_sampling_min_acc: z.number().finite().min(0).max(1).default(0.01),
    dynamic_sampling_max_acc: z.number().finite().min(0).max(1).default(0.99),
    /** How many extra sampling rounds dynamic sampling may take to fill a batch. */
    dynamic_sampling_max_tries: z.number().int().positive().default(10),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.dynamic_sampling_min_acc >= c.dynamic_sampling_max_acc) {
      ctx.addIssue({ code: 'custom', path: ['dynamic_sampling_min_acc'], message: 'must be below dynamic_sampling_max_acc' });
    }
    if (c.recompute_masked_logprobs && tokenWeightings.has(c.token_weighting) && tokenWeightings.get(c.token_weighting).needsMaskedLogprobs) {
      ctx.addIssue({
        code: 'custom',
        path: ['recompute_masked_logprobs'],
        message: `token_weighting ${c.token_weighting} reads the masked view as the sampling policy scored it once per rollout step; set recompute_masked_logprobs false`,
      });
    }
  });

export type ObjectiveConfig = z.output<typeof ObjectiveConfigSchema>;
export type ObjectiveConfigInput = z.input<typeof ObjectiveConfigSchema>;

/**
 * Presets. GRPO and DAPO as in docs/objective.md; PAPO-G / PAPO-D add the perception loss (gamma 0.02 / 0.01)
 * and the double entropy loss (0.03 on both branches, the low end of the paper's 0.03-0.05).
 * VPPO (arXiv 2510.09285) with the settings of its reference run (github.com/huaixuheqing/VPPO-RL,
 * examples/configs/config.yaml and train_vppo_7b.sh): GRPO advantages, k3 reference KL 0.01, clip
 * 0.2 / 0.28, online filtering of groups with accuracy in (0.01, 0.99) (= dynamic_sampling), masked view by
 * patch blackening with probability 0.5, entropy penalty 0.06 on the original view (= entropy_coef_original),
 * the top 40% most vision-dependent tokens of each response, advantage floor 0.9; no perception loss.
 */
export const PRESETS = {
  grpo: { clip_ratio_high: 0.3, kl_coef: 0.01 },
  dapo: { clip_ratio_high: 0.28, kl_coef: 0, dynamic_sampling: true },
  papo_g: {
    clip_ratio_high: 0.3,
    kl_coef: 0.01,
    perception_loss_weight: 0.02,
    entropy_coef_original: 0.03,
    entropy_coef_masked: 0.03,
  },
  papo_d: {
    clip_ratio_high: 0.28,
    kl_coef: 0,
    dynamic_sampling: true,
    perception_loss_weight: 0.01,
    entropy_coef_original: 0.03,
    entropy_coef_masked: 0.03,
  },
  vppo: {
    clip_ratio_high: 0.28,
    kl_coef: 0.01,
    dynamic_sampling: true,
    mask_ratio: 0.5,
    entropy_coef_original: 0.06,
    token_weighting: 'vppo',
    vppo_top_token_ratio: 0.4,
    vppo_adv_floor: 0.9,
  },
} as const satisfies Record<string, ObjectiveConfigInput>;

export type PresetName = keyof typeof PRESETS;

/** Validates a config (optionally on top of a preset); throws an Error naming every bad key. */
export function objectiveConfig(input: ObjectiveConfigInput = {}, preset?: PresetName): ObjectiveConfig {
  if (preset !== undefined && !(preset in PRESETS)) {
    throw new Error(`unknown objective preset '${String(preset)}': use one of ${Object.keys(PRESETS).join(', ')}`);
  }
  const merged = { ...(preset ? PRESETS[preset] : {}), ...input };
  return parseConfig(ObjectiveConfigSchema, merged, 'objective config');
}

/**
 * Whether the objective reads the masked view's log-probs, i.e. whether the masked-view stage must run:
 * PAPO's perception loss or masked-branch entropy, or a token weighting that needs them (VPPO's visual
 * dependency), even with both PAPO weights 0.
 */
export function needsMaskedLogprobs(cfg: Pick<ObjectiveConfig, 'perception_loss_weight' | 'entropy_coef_masked' | 'token_weighting'>): boolean {
  return cfg.perception_loss_weight > 0 || cfg.entropy_coef_masked > 0 || tokenWeightings.get(cfg.token_weighting).needsMaskedLogprobs;
}
