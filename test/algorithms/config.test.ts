import { test } from 'node:test';
import assert from 'node:assert/strict';
import { objectiveConfig, PRESETS } from '../../algorithms/config.ts';
import { advantageEstimators, klEstimators, lossAggModes, policyLosses, tokenWeightings } from '../../algorithms/index.ts';
import { FLOAT64_REFERENCE } from '../../algorithms/float64-reference.ts';

test('defaults are those of the spec', () => {
  const c = objectiveConfig();
  assert.equal(c.adv_estimator, 'grpo');
  assert.equal(c.adv_eps, 1e-6);
  assert.equal(c.policy_loss, 'ppo_clip');
  assert.equal(c.clip_ratio_low, 0.2);
  assert.equal(c.clip_ratio_high, 0.3);
  assert.equal(c.clip_ratio_dual, 3);
  assert.equal(c.kl_coef, 0.01);
  assert.equal(c.kl_estimator, 'k3');
  assert.equal(c.loss_agg_mode, 'token-mean');
  assert.equal(c.mask_ratio, 0.6);
  assert.equal(c.mask_patch_size, 14);
  assert.equal(c.recompute_masked_logprobs, false);
  assert.equal(c.perception_loss_weight, 0);
});

test('presets: GRPO, DAPO, PAPO-G, PAPO-D, VPPO', () => {
  const g = objectiveConfig({}, 'papo_g');
  assert.equal(g.perception_loss_weight, 0.02);
  assert.equal(g.kl_coef, 0.01);
  assert.equal(g.clip_ratio_high, 0.3);
  const d = objectiveConfig({}, 'papo_d');
  assert.equal(d.perception_loss_weight, 0.01);
  assert.equal(d.kl_coef, 0);
  assert.equal(d.clip_ratio_high, 0.28);
  assert.equal(d.dynamic_sampling, true);
  assert.equal(objectiveConfig({}, 'dapo').perception_loss_weight, 0);
  assert.equal(objectiveConfig({}, 'grpo').entropy_coef_masked, 0);
  // Explicit values win over the preset.
  assert.equal(objectiveConfig({ perception_loss_weight: 0.04 }, 'papo_g').perception_loss_weight, 0.04);
  // VPPO: its reference run's settings (GRPO advantages, KL 0.01, clip high 0.28, online filtering, mask 0.5, entropy 0.06).
  const v = objectiveConfig({}, 'vppo');
  assert.equal(v.token_weighting, 'vppo');
  assert.equal(v.vppo_top_token_ratio, 0.4);
  assert.equal(v.vppo_adv_floor, 0.9);
  assert.equal(v.perception_loss_weight, 0);
  assert.equal(v.entropy_coef_masked, 0);
  assert.equal(v.entropy_coef_original, 0.06);
  assert.equal(v.kl_coef, 0.01);
  assert.equal(v.clip_ratio_high, 0.28);
  assert.equal(v.dynamic_sampling, true);
  assert.equal(v.mask_ratio, 0.5);
  assert.equal(objectiveConfig({}, 'papo_g').token_weighting, 'none');
  assert.deepEqual(Object.keys(PRESETS).sort(), ['dapo', 'grpo', 'papo_d', 'papo_g', 'vppo']);
});

test('verl spellings of the KL estimator and the policy loss are accepted', () => {
  assert.equal(objectiveConfig({ kl_estimator: 'low_var_kl' }).kl_estimator, 'k3');
  assert.equal(objectiveConfig({ kl_estimator: 'mse' }).kl_estimator, 'k2');
  assert.equal(objectiveConfig({ kl_estimator: 'kl' }).kl_estimator, 'k1');
  assert.equal(objectiveConfig({ policy_loss: 'vanilla' }).policy_loss, 'ppo_clip');
});

test('the built-in names are exactly those the float64 reference implements', () => {
  assert.deepEqual(advantageEstimators.names(), FLOAT64_REFERENCE.advEstimators);
  assert.deepEqual(policyLosses.names(), FLOAT64_REFERENCE.policyLosses);
  assert.deepEqual(klEstimators.names(), FLOAT64_REFERENCE.klEstimators);
  assert.deepEqual(lossAggModes.names(), FLOAT64_REFERENCE.lossAggModes);
  assert.deepEqual(tokenWeightings.names(), FLOAT64_REFERENCE.tokenWeightings);
});

test('invalid values are rejected with a message naming the key', () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ perception_loss_weight: -0.1 }, /perception_loss_weight/],
    [{ kl_coef: -1 }, /kl_coef/],
    [{ entropy_coef_masked: -0.01 }, /entropy_coef_masked/],
    [{ mask_ratio: 1.2 }, /mask_ratio/],
    [{ mask_ratio: -0.1 }, /mask_ratio/],
    [{ clip_ratio_low: 1 }, /clip_ratio_low/],
    [{ clip_ratio_dual: 1 }, /clip_ratio_dual/],
    [
      { loss_agg_mode: 'mean' },
      /loss_agg_mode: unknown loss aggregation mode "mean"; known: token-mean, seq-mean-token-mean, seq-mean-token-sum, seq-mean-token-sum-norm/,
    ],
    [{ adv_estimator: 'gae' }, /adv_estimator: unknown advantage estimator "gae"/],
    [{ policy_loss: 'gspo' }, /policy_loss: unknown policy loss "gspo"/],
    [{ kl_estimator: 'full' }, /kl_estimator: unknown KL estimator "full"/],
    [{ mask_patch_size: 0 }, /mask_patch_size/],
    [{ perception_loss_wieght: 0.02 }, /perception_loss_wieght/],
    [{ dynamic_sampling_min_acc: 0.9, dynamic_sampling_max_acc: 0.5 }, /dynamic_sampling_min_acc/],
  ];
  for (const [input, re] of bad) assert.throws(() => objectiveConfig(input as never), re, JSON.stringify(input));
  assert.throws(() => objectiveConfig({}, 'ppo' as never), /unknown objective preset 'ppo'/);
});
