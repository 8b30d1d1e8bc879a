import { test } from 'node:test';
import assert from 'node:assert/strict';
import { from } from 'rxjs';
import { initTf, tf } from '../../util/tf-backend.ts';
import { groupAdvantages } from '../../operators/group-advantages.ts';
import { collect, scoredBatch } from './fakes.ts';
import { assertClose } from '../asserts.ts';

await initTf();

// Three groups of G = 4: mixed, constant, one success.
const rewards = [1, 0, 0, 1, 0.5, 0.5, 0.5, 0.5, 1, 0, 0, 0];
const batch = () => scoredBatch({ G: 4, accuracy: rewards.map((r) => (r > 0 ? 1 : 0)), rewards, timing: { reward: 0.5 } });

test('grpo: (r - mean) / (unbiased std + eps), zero for a constant group', async () => {
  const [out] = await collect(from([batch()]).pipe(groupAdvantages({ estimator: 'grpo' })));
  // Group 0: mean 0.5, std sqrt(4 * 0.25 / 3) = 0.57735. Group 2: mean 0.25, std sqrt(0.75 / 3) = 0.5.
  const a = 0.5 / (Math.sqrt(1 / 3) + 1e-6);
  assertClose(out.advantages, [a, -a, -a, a, 0, 0, 0, 0, 0.75 / (0.5 + 1e-6), -0.25 / (0.5 + 1e-6), -0.25 / (0.5 + 1e-6), -0.25 / (0.5 + 1e-6)], 1e-5);
  assertClose([a], [0.866025], 1e-5);
  assert.ok(out.advantages instanceof Float32Array);
  assert.equal(out.zeroVarianceGroups, 1);
  assert.equal(out.timing.reward, 0.5);
  assert.ok(out.timing.adv > 0);
});

test('grpo with a large eps shrinks the advantages', async () => {
  const [out] = await collect(from([batch()]).pipe(groupAdvantages({ estimator: 'grpo', eps: 0.5 })));
  const s = Math.sqrt(1 / 3) + 0.5;
  assertClose(out.advantages, [0.5 / s, -0.5 / s, -0.5 / s, 0.5 / s, 0, 0, 0, 0, 0.75, -0.25, -0.25, -0.25], 1e-5);
});

test('dr_grpo: r - mean, no std division', async () => {
  const [out] = await collect(from([batch()]).pipe(groupAdvantages({ estimator: 'dr_grpo' })));
  assertClose(out.advantages, [0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0, 0.75, -0.25, -0.25, -0.25], 1e-5);
  assert.equal(out.zeroVarianceGroups, 1);
});

test('rloo: r minus the mean of the other responses', async () => {
  const [out] = await collect(from([batch()]).pipe(groupAdvantages({ estimator: 'rloo' })));
  // Response 0 of group 2: 1 - mean(0, 0, 0) = 1; response 1: 0 - mean(1, 0, 0) = -1/3.
  assertClose(out.advantages, [2 / 3, -2 / 3, -2 / 3, 2 / 3, 0, 0, 0, 0, 1, -1 / 3, -1 / 3, -1 / 3], 1e-5);
});

test('zero-variance groups are counted whatever their value', async () => {
  const all = scoredBatch({ G: 2, accuracy: [0, 0, 1, 1, 0, 1, 0.3, 0.3] });
  const [out] = await collect(from([all]).pipe(groupAdvantages({ estimator: 'dr_grpo' })));
  assert.equal(out.zeroVarianceGroups, 3);
  assertClose(out.advantages, [0, 0, 0, 0, -0.5, 0.5, 0, 0], 1e-5);
});

test('an empty batch (dynamic sampling found nothing) gets empty advantages; no tensors leak', async () => {
  const before = tf.memory().numTensors;
  const [empty] = await collect(from([scoredBatch({ G: 4, accuracy: [] })]).pipe(groupAdvantages({ estimator: 'grpo' })));
  assert.equal(empty.advantages.length, 0);
  assert.equal(empty.zeroVarianceGroups, 0);
  await collect(from([batch(), batch()]).pipe(groupAdvantages({ estimator: 'grpo' })));
  assert.equal(tf.memory().numTensors, before);
});
