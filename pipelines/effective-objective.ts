/**
 * The line `papo train` says at start when objective keys are given beside a preset: which keys were
 * given and which the preset still supplies, so that `algorithm.adv_estimator: grpo` on the default
 * preset papo_g does not quietly train PAPO.
 *
 * @example
 * effectiveObjectiveLine('papo_g', { adv_estimator: 'grpo' }, {}, objective)
 * // 'algorithm: preset papo_g + adv_estimator=grpo -> still on from the preset: clip_ratio_high 0.3, kl_coef 0.01 (beta), perception_loss_weight 0.02 (gamma), ...'
 */
import { PRESETS, type ObjectiveConfig, type PresetName } from '../algorithms/config.ts';

/** The paper's names of the PAPO weights, shown beside the keys. */
const PAPER_NAMES: Record<string, string> = {
  perception_loss_weight: 'gamma',
  entropy_coef_original: 'eta1',
  entropy_coef_masked: 'eta2',
  kl_coef: 'beta',
};

/**
 * The line, or undefined when no objective key was given or the preset supplies none of its own beside them.
 * `given` holds the objective keys of the document (a preset's expanded keys, as a resumed run's saved config
 * holds them, leave nothing to the preset); `mapped` names the EasyR1 key that set one (`kl_coef` -> `algorithm.disable_kl`).
 */
export function effectiveObjectiveLine(
  preset: PresetName,
  given: Record<string, unknown>,
  mapped: Readonly<Record<string, string>>,
  objective: ObjectiveConfig,
): string | undefined {
  const keys = Object.keys(given);
  if (keys.length === 0) return undefined;
  const fromPreset = Object.keys(PRESETS[preset]).filter((k) => !keys.includes(k));
  if (fromPreset.length === 0) return undefined;
  const shown = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));
  const describeGiven = keys.map((k) => `${k}=${shown(objective[k as keyof ObjectiveConfig] ?? given[k])}${mapped[k] ? ` (${mapped[k]})` : ''}`);
  const value = (k: string) => `${k} ${shown(objective[k as keyof ObjectiveConfig])}${PAPER_NAMES[k] ? ` (${PAPER_NAMES[k]})` : ''}`;
  const papoOn = objective.perception_loss_weight > 0 && fromPreset.includes('perception_loss_weight');
  return (
    `algorithm: preset ${preset} + ${describeGiven.join(', ')} -> still on from the preset: ${fromPreset.map(value).join(', ')}` +
    (papoOn ? `; this trains PAPO (perception loss on): algorithm.preset=${objective.dynamic_sampling ? 'dapo' : 'grpo'} for the baseline` : '')
  );
}
