/**
 * Extension by name from user code (test/fixtures/my-extensions.ts): an advantage estimator, a policy
 * loss, a KL estimator, an aggregation mode, a mask type, a reward and a task registered by a module of the user's are
 * refused by config validation until that module is imported, then run by name through `papoLoss`,
 * through `runTrain` and through `papo --import ... train`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { parse } from 'yaml';
import { initTf, tf } from '../../util/tf-backend.ts';
import { objectiveConfig, papoLoss, estimateGroupAdvantages } from '../../algorithms/index.ts';
import { tinyPolicyInTmp } from './tiny-run.ts';
import { trainConfig, type TrainConfigInput } from '../../pipelines/train-config.ts';
import { runTrain } from '../../pipelines/train.ts';
import { assertClose, errorOf } from '../asserts.ts';

await initTf();

const FIXTURE = 'test/fixtures/my-extensions.ts';
const NAMED = {
  adv_estimator: 'max_baseline',
  policy_loss: 'reinforce',
  kl_estimator: 'k2_half',
  loss_agg_mode: 'token-sum',
  mask_type: 'left_half',
} as const;

let tmp: string;
let weights: string;
before(async () => {
  ({ tmp, weights } = await tinyPolicyInTmp('papo-extensions-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const runConfig = (): TrainConfigInput => ({
  data: { task: 'digits_max', rollout_batch_size: 4, max_response_length: 4, seed: 3 },
  algorithm: { preset: 'grpo', ...NAMED, adv_eps: 0.125, perception_loss_weight: 0.01 },
  worker: {
    actor: { model: { model_path: weights }, global_batch_size: 0 },
    rollout: { n: 4, threads: 1 },
    reward: { score_function: 'one_char' },
  },
  trainer: { max_steps: 2, test_before_and_after: false },
});

// Runs first: nothing of the fixture is imported yet.
test('before the user module is imported, its names are refused, each naming its key and the known names', () => {
  assert.match(
    errorOf(() => objectiveConfig({ adv_estimator: 'max_baseline' })).message,
    /adv_estimator: unknown advantage estimator "max_baseline"; known: grpo, dr_grpo, rloo \(add one with registerAdvEstimator\)/,
  );
  assert.match(
    errorOf(() => objectiveConfig({ policy_loss: 'reinforce' })).message,
    /policy_loss: unknown policy loss "reinforce"; known: ppo_clip \(also vanilla\)/,
  );
  assert.match(
    errorOf(() => objectiveConfig({ kl_estimator: 'k2_half' })).message,
    /kl_estimator: unknown KL estimator "k2_half"; known: k1, k2, k3, abs \(also kl, mse, low_var_kl\)/,
  );
  assert.match(
    errorOf(() => objectiveConfig({ loss_agg_mode: 'token-sum' })).message,
    /loss_agg_mode: unknown loss aggregation mode "token-sum"; known: token-mean, /,
  );
  assert.match(
    errorOf(() => objectiveConfig({ mask_type: 'left_half' })).message,
    /mask_type: unknown mask type "left_half"; known: random_patch \(add one with registerMaskType\)/,
  );
  const run = errorOf(() => trainConfig(runConfig())).message;
  assert.match(run, /^invalid run config: data\.task: unknown task "digits_max"; known: digits, scenes, manifest, dataset \(add one with registerTask\)/);
  assert.match(run, /worker\.reward\.score_function: 'one_char' is neither a registered reward function \(composite; add one with registerReward\)/);
  const algorithm = errorOf(() => trainConfig({ algorithm: NAMED })).message;
  for (const key of Object.keys(NAMED)) assert.match(algorithm, new RegExp(`algorithm\\.${key}: unknown`));
  assert.throws(() => estimateGroupAdvantages([1, 0], 2, 'max_baseline'), /unknown advantage estimator "max_baseline"/);
});

test('registered from user code, they run by name through estimateGroupAdvantages and papoLoss', async () => {
  const { calls } = await import('../fixtures/my-extensions.ts');
  const cfg = objectiveConfig({ ...NAMED, adv_eps: 0.25, kl_coef: 0.1 }, 'grpo');
  assert.deepEqual(
    { ...NAMED },
    {
      adv_estimator: cfg.adv_estimator,
      policy_loss: cfg.policy_loss,
      kl_estimator: cfg.kl_estimator,
      loss_agg_mode: cfg.loss_agg_mode,
      mask_type: cfg.mask_type,
    },
  );

  // max_baseline: R - max of the group; a constant group still gets 0
  const adv = estimateGroupAdvantages([1, 0, 0.5, 0, 0.3, 0.3, 0.3, 0.3], 4, cfg.adv_estimator, cfg.adv_eps);
  assertClose(adv.advantages.dataSync(), [0, -1, -0.5, -1, 0, 0, 0, 0]);
  assert.equal(adv.zeroVarianceGroups, 1);
  assert.deepEqual(calls.estimatorEps, [0.25]);
  adv.advantages.dispose();

  // Two responses: tokens [-1, -2] and [-0.5, pad]; advantages 0.5 and -1.
  const inputs = {
    logprobs: tf.tensor2d([
      [-1, -2],
      [-0.5, 7],
    ]),
    oldLogprobs: tf.tensor2d([
      [-1, -2],
      [-0.5, 7],
    ]),
    refLogprobs: tf.tensor2d([
      [-1.5, -2],
      [-0.5, 9],
    ]),
    advantages: tf.tensor1d([0.5, -1]),
    responseMask: tf.tensor2d([
      [1, 1],
      [1, 0],
    ]),
  };
  const before = { ...calls };
  const { loss, metrics } = papoLoss(inputs, cfg);
  // reinforce: -A * l per token = 0.5, 1, -0.5, summed (token-sum) = 1
  assertClose(metrics['actor/pg_loss']!, 1);
  // k2_half: 0.25 * (l - l_ref)^2 = 0.0625, 0, 0
  assertClose(metrics['actor/kl_loss']!, 0.0625);
  assertClose(metrics['actor/entropy_loss']!, 3.5);
  assert.equal(metrics['actor/pg_clipfrac'], 0);
  assertClose(metrics['actor/ppo_kl']!, 0);
  assertClose(loss.dataSync()[0], 1 + 0.1 * 0.0625);
  assert.equal(calls.policyLoss, before.policyLoss + 1);
  assert.equal(calls.kl, before.kl + 1);
  assert.ok(calls.aggregation >= before.aggregation + 3, 'pg, kl and entropy aggregated with token-sum');
  loss.dispose();
  Object.values(inputs).forEach((t) => t.dispose());
});

test('a policy loss that returns the wrong shape, or an estimator that does, is an error naming it', async () => {
  const { registerPolicyLoss, registerAdvEstimator } = await import('../../algorithms/index.ts');
  registerPolicyLoss('bad_shape', ({ logprobs }) => {
    const pg = tf.sum(logprobs, -1);
    return { pg, clipped: pg, dualClipped: pg, negApproxKl: pg };
  });
  registerAdvEstimator('bad_rows', (g) => tf.sum(g, 1));
  const inputs = { logprobs: tf.zeros([2, 3]), oldLogprobs: tf.zeros([2, 3]), advantages: tf.zeros([2]), responseMask: tf.ones([2, 3]) };
  const tensors = tf.memory().numTensors;
  assert.throws(() => papoLoss(inputs, objectiveConfig({ policy_loss: 'bad_shape', kl_coef: 0 })), {
    message: /policy loss "bad_shape" returned pg of shape \[2\], expected a tensor of shape \[2,3\]/,
  });
  assert.throws(() => estimateGroupAdvantages([1, 0, 1, 0], 2, 'bad_rows'), {
    message: /advantage estimator "bad_rows" returned shape \[2\], expected a tensor of shape \[2, 2\]/,
  });
  assert.equal(tf.memory().numTensors, tensors, 'no tensor leaks on the error path');
  Object.values(inputs).forEach((t) => t.dispose());
});

test('they run by name through runTrain: task, reward, estimator (with adv_eps), loss, KL, aggregation and masking', async () => {
  const { calls } = await import('../fixtures/my-extensions.ts');
  const before = { ...calls, estimatorEps: [...calls.estimatorEps] };
  const r = await runTrain(runConfig(), { quiet: true, noSave: true });
  assert.equal(r.outcome, 'completed');
  assert.equal(r.steps.length, 2);
  assert.equal(r.config.algorithm.adv_estimator, 'max_baseline');
  assert.equal(calls.task, before.task + 1, 'the task was built by its factory');
  assert.equal(calls.reward, before.reward + 2 * 4 * 4, 'every response scored by the registered reward');
  assert.deepEqual(calls.estimatorEps.slice(before.estimatorEps.length), [0.125, 0.125], 'the estimator ran once a step, with algorithm.adv_eps');
  assert.ok(calls.policyLoss >= before.policyLoss + 2 && calls.kl >= before.kl + 2 && calls.aggregation > before.aggregation);
  assert.equal(calls.mask, before.mask + 2 * 4, 'one masked view per prompt');
  for (const s of r.steps) {
    const m = s.metrics;
    assert.ok([0.25, 1].some((v) => m['critic/score/max'] === v) && m['critic/score/min'] >= 0.25, `step ${s.step}: rewards from one_char`);
    assert.ok(m['critic/advantages/max'] <= 1e-6, `step ${s.step}: max_baseline advantages are never positive (${m['critic/advantages/max']})`);
    assert.equal(m['actor/pg_clipfrac'], 0, 'reinforce has no clip');
  }
});

test('papo --import loads the user module before the config is validated', () => {
  const papo = (args: string[]) => spawnSync(process.execPath, ['bin/papo.js', ...args], { encoding: 'utf8', env: { ...process.env, PAPO_DEBUG: '' } });
  const overrides = ['data.task=digits_max', 'worker.reward.score_function=one_char', ...Object.entries(NAMED).map(([k, v]) => `algorithm.${k}=${v}`)];
  const ok = papo(['--import', FIXTURE, 'train', '--print-config', ...overrides]);
  assert.equal(ok.status, 0, ok.stderr);
  const cfg = parse(ok.stdout);
  assert.equal(cfg.data.task, 'digits_max');
  assert.equal(cfg.worker.reward.score_function, 'one_char');
  for (const [k, v] of Object.entries(NAMED)) assert.equal(cfg.algorithm[k], v);
  const refused = papo(['train', '--print-config', 'algorithm.adv_estimator=max_baseline']);
  assert.equal(refused.status, 1);
  assert.equal(
    refused.stderr,
    'papo: invalid run config: algorithm.adv_estimator: unknown advantage estimator "max_baseline"; known: grpo, dr_grpo, rloo (add one with registerAdvEstimator)\n',
  );
  const missing = papo(['--import', 'nope/ext.ts', 'train', '--print-config']);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /^papo: --import: file .*nope\/ext\.ts does not exist \(relative paths resolve against /);
});
