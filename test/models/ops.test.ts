import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initTf, tf } from '../../util/tf-backend.ts';
import { matMul, dense, embed, pickTargets, entropyFromLogProbs } from '../../models/ops.ts';
import { assertClose } from '../asserts.ts';

await initTf();

test('matMul: value and gradients equal the tfjs reference, with batch broadcasting', () => {
  const a = tf.randomNormal([2, 3, 4], 0, 1, 'float32', 1);
  const b = tf.randomNormal([4, 5], 0, 1, 'float32', 2);
  const f = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(matMul(x, y), tf.reshape(tf.range(0, 30), [2, 3, 5])));
  const g = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, tf.tile(tf.expandDims(y, 0), [2, 1, 1])), tf.reshape(tf.range(0, 30), [2, 3, 5])));
  const [ga, gb] = tf.grads(f)([a, b]);
  const [ra, rb] = tf.grads(g)([a, b]);
  assertClose(matMul(a, b).dataSync(), tf.matMul(a, b).dataSync(), 1e-5);
  assert.deepEqual(gb.shape, [4, 5]);
  assertClose(ga.dataSync(), ra.dataSync(), 1e-4);
  assertClose(gb.dataSync(), rb.dataSync(), 1e-4);
});

test('dense, embed and pickTargets agree with direct indexing', () => {
  const table = tf.tensor2d([
    [1, 2],
    [3, 4],
    [5, 6],
  ]);
  const ids = tf.tensor2d(
    [
      [2, 0],
      [1, 1],
    ],
    undefined,
    'int32',
  );
  assert.deepEqual(embed(ids, table).arraySync(), [
    [
      [5, 6],
      [1, 2],
    ],
    [
      [3, 4],
      [3, 4],
    ],
  ]);
  const x = tf.tensor3d([[[1, 0, 2]]]);
  assert.deepEqual(dense(x, tf.tensor2d([[1], [2], [3]]), tf.tensor1d([10])).arraySync(), [[[17]]]);
  const logp = tf.logSoftmax(
    tf.tensor2d([
      [0.1, 0.2, 0.3],
      [1, 0, -1],
    ]),
  );
  const picked = pickTargets(logp, tf.tensor1d([2, 0], 'int32')).dataSync();
  const lp = logp.arraySync() as number[][];
  assertClose(picked, [lp[0][2], lp[1][0]], 1e-6);
  // Gradient flows to the table only through the looked-up rows.
  const g = tf
    .grad((t: tf.Tensor) => tf.sum(embed(ids, t)))(table)
    .arraySync();
  assert.deepEqual(g, [
    [1, 1],
    [2, 2],
    [1, 1],
  ]);
});

test('entropyFromLogProbs: uniform over V has entropy log V', () => {
  const e = entropyFromLogProbs(tf.logSoftmax(tf.zeros([1, 8]))).dataSync();
  assertClose(e, [Math.log(8)], 1e-6);
});
