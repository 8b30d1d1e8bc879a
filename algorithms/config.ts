/**
 * The objective's configuration: every knob of PAPO / GRPO / DAPO, with the defaults of PAPO-SPEC.md and the
 * names users of verl / EasyR1 know. Validation rejects nonsense with a message naming the key.
 */
import { z } from 'zod';
import { parseConfig } from '../util/schema.ts';

export const ADV_ESTIMATORS = ['grpo', 'dr_grpo', 'rloo'] as const;
export const KL_ESTIMATORS = ['k1', 'k2', 'k3', 'abs'] as const;
export const LOSS_AGG_MODES = ['token-mean', 'seq-mean-token-mean', 'seq-mean-token-sum', 'seq-mean-token-sum-norm'] as const;

/** verl spellings of the KL estimators, accepted as aliases. */
const KL_ALIASES: Record<string, (typeof KL_ESTIMATORS)[number]> = { kl: 'k1', mse: 'k2', low_var_kl: 'k3' };

const nonNeg = () => z.number().finite().nonnegative();

export const ObjectiveConfigSchema = z
  .object({
    /** Group advantage estimator. */
    adv_estimator: z.enum(ADV_ESTIMATORS).default('grpo'),
    /** Added to the group std in `grpo`. */
    adv_eps: z.number().finite().positive().default(1e-6),
    /** PPO clip: the ratio is clipped to [1 - clip_ratio_low, 1 + clip_ratio_high]. */
    clip_ratio_low: nonNeg().lt(1).default(0.2),
    clip_ratio_high: nonNeg().default(0.3),
    /** Dual clip constant C: for negative advantages the per-token loss is capped at -C * A. */
    clip_ratio_dual: z.number().finite().gt(1).default(3.0),
    /** beta: weight of the reference-policy KL; 0 means no reference model at all. */
    kl_coef: nonNeg().default(0.01),
    /** Estimator of the reference KL: k1, k2 (mse), k3 (low_var_kl), abs. verl names are accepted. */
    kl_estimator: z.preprocess((v) => (typeof v === 'string' && v in KL_ALIASES ? KL_ALIASES[v] : v), z.enum(KL_ESTIMATORS)).default('k3'),
    /** gamma: weight of the implicit perception loss (maximised KL between original and masked views). */
    perception_loss_weight: nonNeg().default(0),
    /** eta1: weight of -log-prob (sampled-token entropy) on the original image. */
    entropy_coef_original: nonNeg().default(0),
    /** eta2: weight of -log-prob on the masked image. */
    entropy_coef_masked: nonNeg().default(0),
    /** Recompute masked-view log-probs with the current weights and gradient (off: once per rollout step). */
    recompute_masked_logprobs: z.boolean().default(false),
    loss_agg_mode: z.enum(LOSS_AGG_MODES).default('token-mean'),
    /** Divisor of `seq-mean-token-sum-norm` (Dr.GRPO); default: the padded response length of the batch. */
    loss_scale_factor: z.number().finite().positive().optional(),
    mask_type: z.enum(['random_patch']).default('random_patch'),
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
  });

export type ObjectiveConfig = z.output<typeof ObjectiveConfigSchema>;
export type ObjectiveConfigInput = z.input<typeof ObjectiveConfigSchema>;

/**
 * Presets. GRPO and DAPO as in PAPO-SPEC.md; PAPO-G / PAPO-D add the perception loss (gamma 0.02 / 0.01)
 * and the double entropy loss (0.03 on both branches, the low end of the paper's 0.03-0.05).
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
