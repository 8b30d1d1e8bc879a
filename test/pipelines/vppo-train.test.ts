/**
 * VPPO through the composed graph (`runTrain`) on the tiny policy: the `vppo` preset trains (its masked view
 * computed although its perception and masked-entropy weights are 0) and logs what it does; and a token
 * weighting's mini-batch statistics reach every micro-batch of an optimizer step.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { initTf, tf } from '../../util/tf-backend.ts';
import { registerTokenWeighting } from '../../algorithms/token-weighting.ts';
import { digitShare, tinyPolicyInTmp } from './tiny-run.ts';
import { runTrain } from '../../pipelines/train.ts';
import type { TrainConfigInput } from '../../pipelines/train-config.ts';

await initTf();

let tmp: string;
let weights: string;
before(async () => {
  ({ tmp, weights } = await tinyPolicyInTmp('papo-vppo-test-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function config(algorithm: Record<string, unknown>, actor: Record<string, unknown>, steps: number): TrainConfigInput {
  return {
    data: { task: 'digits', families: ['max'], rollout_batch_size: 4, max_response_length: 4, seed: 3 },
    algorithm,
    worker: {
      actor: { model: { model_path: weights }, optim: { lr: 1e-2 }, ...actor },
      rollout: { n: 4, threads: 1 },
    },
    trainer: { max_steps: steps, test_before_and_after: false },
  };
}

test('the vppo preset trains a tiny policy: masked view without PAPO weights, VPPO metrics, every step applied', async () => {
  const tensors = tf.memory().numTensors;
  const r = await runTrain(config({ preset: 'vppo' }, { global_batch_size: 0, micro_batch_size_per_device_for_update: 6 }, 3), {
    quiet: true,
    noSave: true,
    reward: digitShare,
  });
  assert.equal(tf.memory().numTensors, tensors, 'no tensor outlives the run');
  assert.equal(r.outcome, 'completed');
  assert.equal(r.steps.length, 3);
  assert.equal(r.steps.at(-1)!.version, 3, 'one optimizer step applied per rollout step');
  for (const s of r.steps) {
    const m = s.metrics;
    assert.equal(m['actor/skipped_steps'], 0);
    assert.ok(m['timing_s/masked_log_prob'] !== undefined && Number.isFinite(m['actor/kl_prcp_loss']), `step ${s.step}: the masked view was scored`);
    assert.ok(m['actor/vppo_token_fraction'] >= 0.4 && m['actor/vppo_token_fraction'] <= 1, `token fraction ${m['actor/vppo_token_fraction']}`);
    assert.ok(
      m['actor/vppo_adv_scale_mean'] > 0.9 - 1e-6 && m['actor/vppo_adv_scale_max'] >= 0.9 - 1e-6,
      `scales ${m['actor/vppo_adv_scale_mean']} ${m['actor/vppo_adv_scale_max']}`,
    );
    assert.ok(Number.isFinite(m['actor/vppo_dependency_threshold']) && m['actor/vppo_dependency_threshold'] >= 0);
    assert.ok(Number.isFinite(m['actor/loss']) && Number.isFinite(m['actor/kl_loss']));
  }
});

test("a token weighting's mini-batch statistics cover the optimizer step's rows while each micro-batch sees its own", async () => {
  // A user weighting that reads the masked view: the stage must run under grpo (perception weight 0).
  registerTokenWeighting(
    'test_rows',
    ({ responseMask }, _cfg, stats) => ({
      metrics: { 'actor/test_stats_rows': tf.scalar(stats.rows), 'actor/test_micro_rows': tf.scalar(responseMask.shape[0]) },
    }),
    { needsMaskedLogprobs: true, miniBatchStats: ({ responseMask }) => ({ rows: responseMask.shape[0] }) },
  );
  // 4 prompts x 4 responses, 2 prompts (8 rows) per optimizer step, micro-batches of 3, 3 and 2 rows.
  const r = await runTrain(config({ preset: 'grpo', token_weighting: 'test_rows' }, { global_batch_size: 2, micro_batch_size_per_device_for_update: 3 }, 1), {
    quiet: true,
    noSave: true,
    reward: digitShare,
  });
  const m = r.steps[0].metrics;
  assert.equal(m['actor/optimizer_steps'], 2);
  assert.equal(m['actor/test_stats_rows'], 8);
  assert.equal(m['actor/test_micro_rows'], 8 / 3);
  assert.ok(Number.isFinite(m['actor/kl_prcp_loss']), 'the masked view was scored for the weighting');
});
