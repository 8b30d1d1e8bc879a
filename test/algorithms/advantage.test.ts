import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initTf, tf } from '../../util/tf-backend.ts';
import { advantageEstimators, estimateGroupAdvantages, broadcastAdvantages } from '../../algorithms/advantage.ts';
import { Rng } from '../../util/rng.ts';
import { refAdvantages } from '../../algorithms/float64-reference.ts';
import { assertClose } from '../asserts.ts';

await initTf();

/** relative to the magnitude, absolute near zero */
const TOL = { abs: 1e-5, rel: 1e-5 };

test('GRPO, Dr.GRPO and RLOO on a hand-computed group', () => {
  const r = [1, 0, 0, 1];
  const std = Math.sqrt(1 / 3); // unbiased: sum of squares 4 * 0.25 over n - 1 = 3
  const a = 0.5 / (std + 1e-6);
  assertClose(estimateGroupAdvantages(r, 4, 'grpo').advantages.dataSync(), [a, -a, -a, a], TOL);
  assertClose(estimateGroupAdvantages(r, 4, 'dr_grpo').advantages.dataSync(), [0.5, -0.5, -0.5, 0.5], TOL);
  assertClose(estimateGroupAdvantages(r, 4, 'rloo').advantages.dataSync(), [2 / 3, -2 / 3, -2 / 3, 2 / 3], TOL);
});

test('zero-variance groups get exactly zero advantage and are counted', () => {
  for (const est of advantageEstimators.names()) {
    const res = estimateGroupAdvantages([0.1, 0.1, 0.1, 1, 0, 1, 0.7, 0.7, 0.7], 3, est);
    const adv = Array.from(res.advantages.dataSync());
    assert.deepEqual(adv.slice(0, 3), [0, 0, 0]);
    assert.deepEqual(adv.slice(6), [0, 0, 0]);
    assert.ok(adv.slice(3, 6).every((v) => v !== 0));
    assert.equal(res.zeroVarianceGroups, 2);
    assert.equal(res.numGroups, 3);
  }
});

test('all estimators equal the float64 reference on random rewards; groups of one keep their reward', () => {
  const rng = Rng.seeded(11);
  for (const est of advantageEstimators.names()) {
    for (const G of [1, 2, 5, 8]) {
      const rewards = Array.from({ length: 4 * G }, () => (rng.float() < 0.5 ? 1 : 0.1 * rng.int(10)));
      const res = estimateGroupAdvantages(tf.tensor1d(rewards), G, est);
      assertClose(res.advantages.dataSync(), refAdvantages(rewards, G, est), { abs: 2e-5, rel: 2e-5 });
      res.advantages.dispose();
    }
  }
});

test('advantages broadcast over tokens and vanish on padding; bad group sizes are errors', () => {
  const b = broadcastAdvantages(
    tf.tensor1d([2, -1]),
    tf.tensor2d([
      [1, 1, 0],
      [1, 0, 0],
    ]),
  );
  const got = (b.arraySync() as number[][]).map((r) => r.map((v) => v + 0)); // -0 + 0 is +0
  assert.deepEqual(got, [
    [2, 2, 0],
    [-1, 0, 0],
  ]);
  assert.throws(() => estimateGroupAdvantages([1, 2, 3], 2, 'grpo'), /do not split into groups of 2/);
  assert.throws(() => estimateGroupAdvantages([1, 2], 0, 'grpo'), /positive integer/);
  const before = tf.memory().numTensors;
  estimateGroupAdvantages([1, 0, 1, 1], 2, 'grpo').advantages.dispose();
  assert.equal(tf.memory().numTensors, before);
});
