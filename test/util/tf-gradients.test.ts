import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { generateTfGradients, GENERATED } from '../../scripts/tf-gradients.ts';
import { initTf, tf } from '../../util/tf-backend.ts';

test('util/tf-gradients.generated.ts is what scripts/tf-gradients.ts makes from the installed tfjs-core', async () => {
  assert.equal(fs.readFileSync(GENERATED, 'utf8'), await generateTfGradients(), 'regenerate it: node --import tsx scripts/tf-gradients.ts');
});

test('tfjs-core gets its gradients without the @tensorflow/tfjs union package', async () => {
  const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> };
  assert.equal(pkg.dependencies['@tensorflow/tfjs'], undefined);
  await initTf('cpu');
  for (const kernel of [tf.BatchMatMul, tf.Softmax, tf.Log, tf.Exp, tf.Sum, tf.Multiply, tf.Sub, tf.Maximum, tf.Relu, tf.Transpose, tf.Reshape])
    assert.ok(tf.getGradient(kernel), `no gradient registered for ${kernel}`);
  // d/dx sum(log(softmax(x)) * w) = w - softmax(x) * sum(w), checked against the closed form
  const x = tf.tensor1d([0.5, -1, 2]);
  const w = tf.tensor1d([1, 0, 0]);
  const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.logSoftmax(v), w)))(x);
  const p = tf.softmax(x).dataSync();
  const got = g.dataSync();
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(got[i] - ((i === 0 ? 1 : 0) - p[i])) < 1e-5, `gradient ${i}: ${got[i]}`);
  // a tensor made by tfjs-core goes through the bundled ops and back
  const mm = tf.grad((a: tf.Tensor) => tf.sum(tf.matMul(a as tf.Tensor2D, tf.ones([2, 2]) as tf.Tensor2D)))(tf.ones([2, 2]));
  assert.deepEqual([...mm.dataSync()], [2, 2, 2, 2]);
});
