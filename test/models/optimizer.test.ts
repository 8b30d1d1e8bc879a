import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initTf, tf } from '../../util/tf-backend.ts';
import { AdamW, clipByGlobalNorm, learningRate, adamWStateToRecord, adamWStateFromRecord } from '../../models/optimizer.ts';
import { assertClose } from '../asserts.ts';

await initTf();

test('AdamW: two steps on a 2-element parameter match a hand computation', () => {
  const p = tf.variable(tf.tensor2d([[1, -2]]));
  const opt = new AdamW({ w: p }, { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, maxGradNorm: 0 });
  // Hand-computed in float64.
  let w = [1, -2];
  let m = [0, 0];
  let v = [0, 0];
  const gs = [
    [0.5, -1],
    [0.1, 0.2],
  ];
  gs.forEach((g, i) => {
    const t = i + 1;
    m = m.map((mj, j) => 0.9 * mj + 0.1 * g[j]);
    v = v.map((vj, j) => 0.999 * vj + 0.001 * g[j] ** 2);
    w = w.map((wj, j) => wj * (1 - 0.1 * 0.1) - (0.1 * (m[j] / (1 - 0.9 ** t))) / (Math.sqrt(v[j] / (1 - 0.999 ** t)) + 1e-8));
    const grad = tf.tensor2d([g]);
    const info = opt.applyGradients({ w: grad });
    grad.dispose();
    assert.equal(info.step, t);
    assertClose(info.gradNorm, Math.hypot(...g), 1e-6, 'grad norm');
    const got = p.dataSync();
    assertClose(got[0], w[0], 1e-6, `step ${t} w0`);
    assertClose(got[1], w[1], 1e-6, `step ${t} w1`);
  });
  // Step 1 by hand: w = [1 * 0.99 - 0.1, -2 * 0.99 + 0.1] (Adam's first step moves by lr * sign(g)).
  const st = opt.exportState();
  assertClose(st.m.w[0], 0.9 * 0.05 + 0.1 * 0.1, 1e-7, 'm0');
  assertClose(st.v.w[1], 0.999 * 0.001 + 0.001 * 0.04, 1e-9, 'v1');
  opt.dispose();
  p.dispose();
});

test('AdamW: no weight decay on rank-1 parameters (biases, LayerNorm)', () => {
  const b = tf.variable(tf.tensor1d([1, 1]));
  const opt = new AdamW({ b }, { lr: 0.1, weightDecay: 0.5, maxGradNorm: 0 });
  const z = tf.zeros([2]);
  opt.applyGradients({ b: z });
  assert.deepEqual([...b.dataSync()], [1, 1]);
  tf.dispose([b, z]);
  opt.dispose();
});

test('clipping scales the global norm to the threshold', () => {
  const g = [tf.tensor1d([3, 4]), tf.tensor2d([[12]])];
  const { grads, norm } = clipByGlobalNorm(g, 1);
  assertClose(norm, 13, 1e-5, 'norm before');
  const after = Math.sqrt(grads.reduce((s, t) => s + (t.dataSync() as Float32Array).reduce((a, x) => a + x * x, 0), 0));
  assertClose(after, 1, 1e-6, 'norm after');
  assertClose(grads[1].dataSync()[0], 12 / 13, 1e-6, 'direction kept');
  const unclipped = clipByGlobalNorm(g, 100);
  assert.deepEqual([...unclipped.grads[0].dataSync()], [3, 4]);
  // Inside the optimizer: the moments see the clipped gradient.
  const p = tf.variable(tf.tensor1d([0, 0]));
  const q = tf.variable(tf.tensor2d([[0]]));
  const opt = new AdamW({ p, q }, { lr: 0.1, maxGradNorm: 1 });
  const info = opt.applyGradients({ p: g[0], q: g[1] });
  assertClose(info.gradNorm, 13, 1e-5, 'reported norm');
  assertClose(opt.exportState().m.q[0], 0.1 * (12 / 13), 1e-6, 'clipped first moment');
  tf.dispose([...g, ...grads, ...unclipped.grads, p, q]);
  opt.dispose();
});

test('learning-rate schedules: constant, linear warm-up, cosine', () => {
  assert.equal(learningRate(0.1, { kind: 'constant' }, 50), 0.1);
  const warm = { kind: 'linear-warmup' as const, warmupSteps: 10 };
  assertClose(learningRate(0.1, warm, 1), 0.01, 1e-12, 'warm 1');
  assertClose(learningRate(0.1, warm, 5), 0.05, 1e-12, 'warm 5');
  assert.equal(learningRate(0.1, warm, 10), 0.1);
  assert.equal(learningRate(0.1, warm, 1000), 0.1);
  const cos = { kind: 'cosine' as const, warmupSteps: 10, totalSteps: 110, minLrRatio: 0.1 };
  assertClose(learningRate(0.1, cos, 10), 0.1, 1e-12, 'cos at warm-up end');
  assertClose(learningRate(0.1, cos, 60), 0.01 + 0.5 * 0.09, 1e-12, 'cos midpoint');
  assertClose(learningRate(0.1, cos, 110), 0.01, 1e-12, 'cos end');
  assertClose(learningRate(0.1, cos, 500), 0.01, 1e-12, 'cos after end');
  const p = tf.variable(tf.tensor1d([0]));
  const opt = new AdamW({ p }, { lr: 0.1, schedule: { kind: 'linear-warmup', warmupSteps: 4 } });
  assertClose(opt.nextLr(), 0.025, 1e-12, 'optimizer next lr');
  assert.throws(() => new AdamW({ p }, { lr: -1 }), /invalid AdamW config: lr/);
  assert.throws(() => new AdamW({ p }, { schedule: { kind: 'cosine' } as never }), /invalid AdamW config: schedule/);
  opt.dispose();
  p.dispose();
});

test('AdamW: state export/import reproduces the next step; bad gradients are clear errors', () => {
  const mk = () =>
    tf.variable(
      tf.tensor2d([
        [0.5, -0.5],
        [1, 2],
      ]),
    );
  const a = mk();
  const optA = new AdamW({ a }, { lr: 0.05 });
  const g1 = tf.tensor2d([
    [1, 2],
    [3, 4],
  ]);
  const g2 = tf.tensor2d([
    [-1, 0.5],
    [0.25, 2],
  ]);
  optA.applyGradients({ a: g1 });
  const state = optA.exportState();
  const params = a.dataSync().slice();
  optA.applyGradients({ a: g2 });

  const b = mk();
  b.assign(tf.tensor2d(params, [2, 2]));
  const optB = new AdamW({ a: b }, { lr: 0.05 });
  const record = adamWStateToRecord(state);
  assert.deepEqual(Object.keys(record), ['step', 'm.a', 'v.a']);
  optB.importState(adamWStateFromRecord(record));
  assert.equal(optB.step, 1);
  optB.applyGradients({ a: g2 });
  assert.deepEqual([...b.dataSync()], [...a.dataSync()]);

  assert.throws(() => optB.applyGradients({}), /no gradient for parameter 'a'/);
  const nan = tf.tensor2d([
    [NaN, 0],
    [0, 0],
  ]);
  const before = b.dataSync().slice();
  assert.throws(() => optB.applyGradients({ a: nan }), /gradient norm is NaN at step 3; parameters left unchanged/);
  assert.deepEqual([...b.dataSync()], [...before]);
  assert.equal(optB.step, 2);
  assert.throws(() => optB.importState({ step: 1, m: {}, v: {} }), /missing m\['a'\]/);
  assert.throws(() => optB.importState({ ...state, v: { ...state.v, b: new Float32Array(1) } }), /v\['b'\] is not a parameter/);
  assert.throws(() => adamWStateFromRecord({ step: Float32Array.of(1), 'x.a': new Float32Array(4) }), /unexpected entry 'x.a'/);
  tf.dispose([a, b, g1, g2, nan]);
  optA.dispose();
  optB.dispose();
});
