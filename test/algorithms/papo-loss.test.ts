import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initTf, tf } from '../../util/tf-backend.ts';
import { objectiveConfig, type ObjectiveConfigInput, type PresetName } from '../../algorithms/config.ts';
import { papoLoss, type PapoLossInputs } from '../../algorithms/papo-loss.ts';
import { aggregate, lossAggModes } from '../../algorithms/aggregate.ts';
import { klEstimate } from '../../algorithms/kl.ts';
import { ppoClipLoss } from '../../algorithms/policy-loss.ts';
import { randomInputs, refPapoLoss, type Mat, type RefInputs } from '../../algorithms/float64-reference.ts';
import { assertClose } from '../asserts.ts';
import { disposeInputs, fdGrad, toTf } from './loss-inputs.ts';

await initTf();

/** Every mode registered: in this process, the built-in ones. */
const LOSS_AGG_MODES = lossAggModes.names();

/** float32 against float64: relative, with a floor for values near zero */
const TOL = { rel: 1e-5, abs: 1e-7 };

test('k1, k2, k3 and abs estimators: hand-computed values and the k3 clamps', () => {
  const lp = tf.tensor1d([-1, 0, -30]);
  const lq = tf.tensor1d([-2, -30, 0]);
  const get = (e: string) => Array.from(klEstimate(lp, lq, e).dataSync());
  assert.deepEqual(
    get('k1').map((v) => +v.toFixed(5)),
    [1, 30, -30],
  );
  assert.deepEqual(
    get('k2').map((v) => +v.toFixed(4)),
    [0.5, 450, 450],
  );
  assert.deepEqual(
    get('abs').map((v) => +v.toFixed(5)),
    [1, 30, 30],
  );
  const k3 = get('k3');
  assertClose(k3[0], Math.exp(-1) + 1 - 1, { rel: 1e-6, abs: 1e-7 }); // d = -1
  assertClose(k3[1], 10, { rel: 0, abs: 1e-7 }); // d = -30 -> clamp -20 -> exp(-20) + 19 -> clamp 10
  assertClose(k3[2], 10, { rel: 0, abs: 1e-7 }); // d = +30 -> clamp 20 -> huge -> clamp 10
});

test('PPO surrogate: asymmetric clip, dual clip and clip indicators, by hand', () => {
  const cfg = { clip_ratio_low: 0.2, clip_ratio_high: 0.3, clip_ratio_dual: 3 };
  const ratios = [2, 0.5, 2, 5, 0.5, 1, Math.exp(25)];
  const advs = [1, 1, -1, -1, -1, 2, 1];
  const lp = tf.tensor1d(ratios.map(Math.log));
  const { pg, clipped, dualClipped, negApproxKl } = ppoClipLoss(lp, tf.zeros([7]), tf.tensor1d(advs), cfg);
  const want = [-1.3, -0.5, 2, 3, 0.8, -2, -1.3];
  Array.from(pg.dataSync()).forEach((v, i) => assertClose(v, want[i], { rel: 1e-5, abs: 1e-6 }, `pg[${i}]`));
  assert.deepEqual(Array.from(clipped.dataSync()), [1, 0, 0, 0, 1, 0, 1]);
  assert.deepEqual(Array.from(dualClipped.dataSync()), [0, 0, 0, 1, 0, 0, 0]);
  assertClose(negApproxKl.dataSync()[6], 20, { rel: 0, abs: 1e-5 }, 'log-ratio clamp'); // log-ratio 25 clamped to 20
});

test('aggregation modes, by hand', () => {
  const x = tf.tensor2d([
    [1, 2, 3],
    [4, 99, 99],
  ]);
  const m = tf.tensor2d([
    [1, 1, 1],
    [1, 0, 0],
  ]);
  const got = (mode: string, s?: number) => aggregate(x, m, mode, s).dataSync()[0];
  assertClose(got('token-mean'), 10 / 4, TOL);
  assertClose(got('seq-mean-token-mean'), (2 + 4) / 2, TOL);
  assertClose(got('seq-mean-token-sum'), (6 + 4) / 2, TOL);
  assertClose(got('seq-mean-token-sum-norm'), 10 / 3, TOL);
  assertClose(got('seq-mean-token-sum-norm', 8), 10 / 8, TOL);
  // No valid token at all: 0, not NaN.
  for (const mode of LOSS_AGG_MODES) assert.equal(aggregate(x, tf.zeros([2, 3]), mode).dataSync()[0], 0, mode);
});

test('full objective on a hand-computed case (PAPO-G preset)', () => {
  const cfg = objectiveConfig({}, 'papo_g');
  const inp: RefInputs = {
    logprobs: [[-1, -2]],
    oldLogprobs: [[-1, -2]],
    refLogprobs: [[-1.5, -2]],
    maskedLogprobs: [[-3, -2]],
    advantages: [0.5],
    responseMask: [[1, 1]],
  };
  const klRef = (Math.exp(-0.5) + 0.5 - 1) / 2;
  const klPrcp = (Math.exp(-2) + 2 - 1) / 2;
  const want = -0.5 + 0.01 * klRef - 0.02 * klPrcp + 0.03 * 1.5 + 0.03 * 2.5;
  assertClose(want, -0.3908206995, { rel: 1e-9, abs: 1e-7 }); // the arithmetic above, written out
  const x = toTf(inp);
  const { loss, metrics } = papoLoss(x, cfg);
  assertClose(loss.dataSync()[0], want, { rel: 1e-6, abs: 1e-7 });
  assertClose(metrics['actor/pg_loss']!, -0.5, { rel: 1e-6, abs: 1e-7 });
  assertClose(metrics['actor/kl_loss']!, klRef, TOL);
  assertClose(metrics['actor/kl_prcp_loss']!, -klPrcp, TOL);
  assertClose(metrics['actor/entropy_loss']!, 1.5, { rel: 1e-6, abs: 1e-7 });
  assertClose(metrics['actor/aug_entropy_loss']!, 2.5, { rel: 1e-6, abs: 1e-7 });
  assert.equal(metrics['actor/pg_clipfrac'], 0);
  // Gradient accumulation divides the loss, not the metrics.
  const half = papoLoss(x, cfg, { gradAccumSteps: 2 });
  assertClose(half.loss.dataSync()[0], want / 2, { rel: 1e-6, abs: 1e-7 });
  assertClose(half.metrics['actor/loss']!, want, { rel: 1e-6, abs: 1e-7 });
  disposeInputs(x);
});

const CONFIGS: [string, ObjectiveConfigInput, PresetName | undefined][] = [
  ['grpo', {}, 'grpo'],
  ['dapo', {}, 'dapo'],
  ['papo_g', {}, 'papo_g'],
  ['papo_d', {}, 'papo_d'],
  ['papo_g k1', { kl_estimator: 'kl' }, 'papo_g'],
  ['papo_g k2', { kl_estimator: 'mse' }, 'papo_g'],
  ['papo_g abs', { kl_estimator: 'abs', clip_ratio_low: 0.1, clip_ratio_high: 0.5, clip_ratio_dual: 2 }, 'papo_g'],
  ['heavy perception', { perception_loss_weight: 0.5, entropy_coef_original: 0.2, entropy_coef_masked: 0.1, kl_coef: 0.3 }, undefined],
];

test('full objective equals the float64 reference on random inputs, every preset x aggregation mode', () => {
  let checked = 0;
  for (const [name, over, preset] of CONFIGS) {
    for (const mode of LOSS_AGG_MODES) {
      for (const perToken of [false, true]) {
        const cfg = objectiveConfig({ ...over, loss_agg_mode: mode }, preset);
        const seed = 1000 + checked;
        const ref = randomInputs(seed, 6, 9, perToken);
        // Drop the inputs a config does not use, as a caller would.
        if (cfg.kl_coef === 0) delete ref.refLogprobs;
        if (cfg.perception_loss_weight === 0 && cfg.entropy_coef_masked === 0) delete ref.maskedLogprobs;
        const want = refPapoLoss(ref, cfg);
        const x = toTf(ref);
        const { loss, metrics } = papoLoss(x, cfg);
        assertClose(loss.dataSync()[0], want.loss, TOL, `${name}/${mode} loss`);
        for (const [k, v] of Object.entries(want.metrics))
          assertClose(metrics[k as keyof typeof metrics]!, v, { rel: 1e-5, abs: 1e-6 }, `${name}/${mode} ${k}`);
        assert.deepEqual(Object.keys(metrics).sort(), Object.keys(want.metrics).sort());
        loss.dispose();
        disposeInputs(x);
        checked++;
      }
    }
  }
  assert.equal(checked, CONFIGS.length * LOSS_AGG_MODES.length * 2);
});

test('clamps engage on extreme log-ratios and the reference agrees', () => {
  const cfg = objectiveConfig({ loss_agg_mode: 'token-mean' }, 'papo_g');
  const ref: RefInputs = {
    logprobs: [[-0.1, -40, -3]],
    oldLogprobs: [[-30, -0.1, -3]],
    refLogprobs: [[-40, -0.1, -3]],
    maskedLogprobs: [[-0.1, -45, -60]],
    advantages: [[1, -1, 0.5]],
    responseMask: [[1, 1, 1]],
  };
  const x = toTf(ref);
  const { loss } = papoLoss(x, cfg);
  const v = loss.dataSync()[0];
  assert.ok(Number.isFinite(v));
  assertClose(v, refPapoLoss(ref, cfg).loss, TOL);
  disposeInputs(x);
});

test('gradient w.r.t. logprobs matches finite differences of the float64 reference', () => {
  let n = 0;
  for (const [name, over, preset] of CONFIGS) {
    for (const mode of LOSS_AGG_MODES) {
      const cfg = objectiveConfig({ ...over, loss_agg_mode: mode }, preset);
      const ref = randomInputs(500 + n++, 4, 6);
      const x = toTf(ref);
      const g = tf.grad((lp: tf.Tensor) => papoLoss({ ...x, logprobs: lp }, cfg).loss)(x.logprobs);
      const got = g.arraySync() as Mat;
      const want = fdGrad(ref, cfg);
      const scale = Math.max(...want.flat().map(Math.abs), 1e-3);
      want.forEach((row, b) =>
        row.forEach((w, t) => assert.ok(Math.abs(got[b][t] - w) <= 2e-4 * scale + 1e-6, `${name}/${mode} [${b},${t}]: ${got[b][t]} vs ${w}`)),
      );
      g.dispose();
      disposeInputs(x);
    }
  }
});

test('increasing perception_loss_weight lowers the loss when masked and original log-probs differ', () => {
  const ref = randomInputs(77);
  const x = toTf(ref);
  let prev = Infinity;
  for (const gamma of [0, 0.01, 0.02, 0.04, 0.1]) {
    const { loss } = papoLoss(x, objectiveConfig({ perception_loss_weight: gamma }, 'grpo'));
    const v = loss.dataSync()[0];
    assert.ok(v < prev, `gamma ${gamma}: ${v} !< ${prev}`);
    prev = v;
  }
  // And its gradient pushes log-probs away from the masked view: descending the loss raises kl_prcp.
  const cfg = objectiveConfig({ perception_loss_weight: 1, kl_coef: 0 });
  const zeroAdv = { ...x, advantages: tf.zeros([6]) };
  const klOf = (lp: tf.Tensor) => -papoLoss({ ...zeroAdv, logprobs: lp }, cfg).metrics['actor/kl_prcp_loss']!;
  const g = tf.grad((lp: tf.Tensor) => papoLoss({ ...zeroAdv, logprobs: lp }, cfg).loss)(x.logprobs);
  const stepped = tf.sub(x.logprobs, tf.mul(0.01, g));
  assert.ok(klOf(stepped) > klOf(x.logprobs));
  disposeInputs(x);
});

test('padding is invisible: garbage in padded positions changes neither loss nor gradient, whose padded entries are exactly 0', () => {
  const cfg = objectiveConfig({}, 'papo_g');
  const ref = randomInputs(9, 5, 8, true);
  const dirty = (m: Mat, v: number) => m.map((row, b) => row.map((x, t) => (ref.responseMask[b][t] ? x : v)));
  const clean = toTf(ref);
  const bad = toTf({
    ...ref,
    logprobs: dirty(ref.logprobs, -1e4),
    oldLogprobs: dirty(ref.oldLogprobs, Number.NaN),
    refLogprobs: dirty(ref.refLogprobs!, -Infinity),
    maskedLogprobs: dirty(ref.maskedLogprobs!, Infinity),
    advantages: dirty(ref.advantages as Mat, Number.NaN),
  });
  const run = (x: PapoLossInputs) => {
    let loss = 0;
    const g = tf.grad((lp: tf.Tensor) => {
      const r = papoLoss({ ...x, logprobs: lp }, cfg);
      loss = r.loss.dataSync()[0];
      return r.loss;
    })(x.logprobs);
    return { loss, g: g.arraySync() as Mat };
  };
  const a = run(clean);
  const b = run(bad);
  assertClose(b.loss, a.loss, { rel: 1e-6, abs: 1e-7 });
  b.g.forEach((row, i) =>
    row.forEach((v, t) => {
      assert.ok(Number.isFinite(v));
      if (!ref.responseMask[i][t]) assert.ok(v === 0, `padded gradient [${i},${t}] is ${v}`);
      else assertClose(v, a.g[i][t], { rel: 1e-6, abs: 1e-9 });
    }),
  );
  disposeInputs(clean);
  disposeInputs(bad);
});

test('GRPO is PAPO with perception and entropy weights 0: masked log-probs then change nothing but metrics', () => {
  const ref = randomInputs(3);
  const x = toTf(ref);
  const cfg = objectiveConfig({}, 'grpo');
  const withMasked = papoLoss(x, cfg);
  const without = papoLoss({ ...x, maskedLogprobs: undefined }, cfg);
  assertClose(withMasked.loss.dataSync()[0], without.loss.dataSync()[0], { rel: 1e-7, abs: 1e-7 });
  assert.ok('actor/kl_prcp_loss' in withMasked.metrics && !('actor/kl_prcp_loss' in without.metrics));
  disposeInputs(x);
});

test('missing inputs and bad shapes are clear errors', () => {
  const x = toTf(randomInputs(4));
  assert.throws(() => papoLoss({ ...x, maskedLogprobs: undefined }, objectiveConfig({}, 'papo_g')), /needs maskedLogprobs/);
  assert.throws(() => papoLoss({ ...x, refLogprobs: undefined }, objectiveConfig({}, 'grpo')), /needs refLogprobs/);
  assert.throws(() => papoLoss({ ...x, oldLogprobs: tf.zeros([6, 3]) }, objectiveConfig({}, 'grpo')), /oldLogprobs has shape \[6,3\], expected \[6,9\]/);
  assert.throws(() => papoLoss({ ...x, advantages: tf.zeros([5]) }, objectiveConfig({}, 'grpo')), /advantages has shape/);
  assert.throws(() => papoLoss(x, objectiveConfig({}, 'grpo'), { gradAccumSteps: 0 }), /gradAccumSteps/);
  disposeInputs(x);
});

test('no tensor leaks: loss, metrics and gradient across repeated steps', () => {
  const x = toTf(randomInputs(5));
  const cfg = objectiveConfig({ loss_agg_mode: 'seq-mean-token-mean' }, 'papo_g');
  const step = () => {
    const g = tf.grad((lp: tf.Tensor) => papoLoss({ ...x, logprobs: lp }, cfg).loss)(x.logprobs);
    g.dispose();
    papoLoss(x, cfg).loss.dispose();
  };
  step();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) step();
  assert.equal(tf.memory().numTensors, before);
  disposeInputs(x);
});
