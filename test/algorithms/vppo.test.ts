/**
 * Token weighting (algorithms/token-weighting.ts) and VPPO through papoLoss: a hand-computed [2, 3] case,
 * ties at the top-k cut, the float64 reference on random inputs (padding, an empty response, per-response and
 * per-token advantages, all-zero advantages, every aggregation mode), mini-batch statistics given to a
 * micro-batch, finite-difference gradients, padding invariance, the weights as constants, config checks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initTf, tf } from '../../util/tf-backend.ts';
import { needsMaskedLogprobs, objectiveConfig, type ObjectiveConfig } from '../../algorithms/config.ts';
import { papoLoss, type PapoLossInputs } from '../../algorithms/papo-loss.ts';
import { lossAggModes } from '../../algorithms/aggregate.ts';
import { registerTokenWeighting, tokenWeightingStats } from '../../algorithms/token-weighting.ts';
import { randomInputs, refPapoLoss, refVppoStats, type Mat, type RefInputs } from '../../algorithms/float64-reference.ts';
import { assertClose } from '../asserts.ts';
import { disposeInputs, fdGrad, toTf } from './loss-inputs.ts';

await initTf();

const TOL = { rel: 1e-5, abs: 1e-7 };
const METRIC_TOL = { rel: 1e-5, abs: 1e-6 };

/** Loss and metrics of papoLoss against the float64 reference, with the metric names equal. */
function checkAgainstReference(ref: RefInputs, cfg: ObjectiveConfig, what: string, stats?: Record<string, number>): void {
  const x = toTf(ref);
  const { loss, metrics } = papoLoss(x, cfg, { tokenWeightingStats: stats });
  const want = refPapoLoss(ref, cfg, { tokenWeightingStats: stats });
  assertClose(loss.dataSync()[0], want.loss, TOL, `${what} loss`);
  for (const [k, v] of Object.entries(want.metrics)) assertClose(metrics[k]!, v, METRIC_TOL, `${what} ${k}`);
  assert.deepEqual(Object.keys(metrics).sort(), Object.keys(want.metrics).sort(), what);
  loss.dispose();
  disposeInputs(x);
}

/** Masked log-probs giving the dependency d = m - old per token (old = -1 everywhere). */
const OLD = -1;

test('VPPO by hand on a [2, 3] batch: top-k tokens per response, advantages scaled by normalised mean dependency', () => {
  // Dependencies k3 = exp(d) - d - 1: row 0 d = [0, -1, 1] -> [0, e^-1, e - 2]; row 1 d = [-2, 0, pad] -> [e^-2 + 1, 0].
  const e = Math.E;
  const dep = [
    [0, 1 / e, e - 2],
    [1 / e ** 2 + 1, 0],
  ];
  const ref: RefInputs = {
    logprobs: [
      [OLD, OLD, OLD],
      [OLD, OLD, 0],
    ], // = old: ratio 1, no clipping, pg = -A per kept token
    oldLogprobs: [
      [OLD, OLD, OLD],
      [OLD, OLD, 0],
    ],
    maskedLogprobs: [
      [OLD + 0, OLD - 1, OLD + 1],
      [OLD - 2, OLD + 0, 0],
    ],
    advantages: [1, -1],
    responseMask: [
      [1, 1, 1],
      [1, 1, 0],
    ],
  };
  // k = ceil(3 * 0.4) = 2 and ceil(2 * 0.4) = 1: row 0 keeps tokens 1 and 2, row 1 token 0.
  // Mean dependencies s0 = (0 + 1/e + e - 2) / 3 < s1 = (1/e^2 + 1) / 2: u = [0, 1], mean 0.5,
  // top scale 0.9 + 0.1 / (0.5 + 1e-8), so the scales are 0.9 and (nearly) 1.1; they average (nearly) 1.
  const top = 0.9 + 0.1 / (0.5 + 1e-8);
  const scale = [0.9, top];
  const pg = [
    [0, -scale[0], -scale[0]],
    [scale[1], 0, 0], // A < 0: dual clip 3 * 1.1 does not bind
  ];
  const tokenMean = (pg[0][1] + pg[0][2] + pg[1][0]) / 5; // filtered tokens count in the denominator
  assertClose(tokenMean, (-1.8 + 1.1) / 5, { abs: 1e-7 }); // the arithmetic above, written out
  const cfg = objectiveConfig({ kl_coef: 0, entropy_coef_original: 0 }, 'vppo');
  const x = toTf(ref);
  const r = papoLoss(x, cfg);
  assertClose(r.loss.dataSync()[0], tokenMean, { rel: 1e-6, abs: 1e-7 });
  assertClose(r.metrics['actor/vppo_token_fraction']!, 3 / 5, { abs: 1e-7 });
  assertClose(r.metrics['actor/vppo_adv_scale_mean']!, (scale[0] + scale[1]) / 2, { rel: 1e-6 });
  assertClose(r.metrics['actor/vppo_adv_scale_max']!, scale[1], { rel: 1e-6 });
  assertClose(r.metrics['actor/vppo_dependency_threshold']!, (dep[0][1] + dep[1][0]) / 2, { rel: 1e-6 });
  assertClose(r.metrics['actor/pg_clipfrac']!, 0, { abs: 0 });
  // The sequence mean of the same per-token losses.
  const seq = papoLoss(x, objectiveConfig({ kl_coef: 0, entropy_coef_original: 0, loss_agg_mode: 'seq-mean-token-mean' }, 'vppo'));
  assertClose(seq.loss.dataSync()[0], ((pg[0][1] + pg[0][2]) / 3 + pg[1][0] / 2) / 2, { rel: 1e-6, abs: 1e-7 });
  // The whole preset (reference KL absent: kl_coef needs refLogprobs; entropy 0.06 on the original view) agrees with float64.
  checkAgainstReference(ref, objectiveConfig({ kl_coef: 0 }, 'vppo'), 'preset without reference KL');
  disposeInputs(x);
});

test('ties at the top-k cut go to the earlier tokens; an empty response and equal mean dependencies give scale 1', () => {
  // One response of 5 tokens with dependencies [a, a, a, 0, 0] (k = 2: tokens 0 and 1), one of 4 equal ones
  // (k = 2: tokens 0 and 1), one empty; advantages 1, so pg = -1 on the kept tokens.
  const ref: RefInputs = {
    logprobs: [
      [OLD, OLD, OLD, OLD, OLD],
      [OLD, OLD, OLD, OLD, 0],
      [0, 0, 0, 0, 0],
    ],
    oldLogprobs: [
      [OLD, OLD, OLD, OLD, OLD],
      [OLD, OLD, OLD, OLD, 0],
      [0, 0, 0, 0, 0],
    ],
    maskedLogprobs: [
      [OLD - 1, OLD - 1, OLD - 1, OLD, OLD],
      [OLD - 1, OLD - 1, OLD - 1, OLD - 1, 0],
      [0, 0, 0, 0, 0],
    ],
    advantages: [1, 1, 7],
    responseMask: [
      [1, 1, 1, 1, 1],
      [1, 1, 1, 1, 0],
      [0, 0, 0, 0, 0],
    ],
  };
  const cfg = objectiveConfig({ kl_coef: 0, entropy_coef_original: 0 }, 'vppo');
  // Mean dependencies 3a/5 and a differ: shaping on; with the per-token pg written out by the reference.
  checkAgainstReference(ref, cfg, 'ties');
  // Which tokens: the gradient of the token-mean pg is -scale_i / 9 on kept tokens and 0 elsewhere.
  const x = toTf(ref);
  const g = tf.grad((lp: tf.Tensor) => papoLoss({ ...x, logprobs: lp }, cfg).loss)(x.logprobs);
  const kept = (g.arraySync() as Mat).map((row) => row.map((v) => (v !== 0 ? 1 : 0)));
  assert.deepEqual(kept, [
    [1, 1, 0, 0, 0],
    [1, 1, 0, 0, 0],
    [0, 0, 0, 0, 0],
  ]);
  g.dispose();
  // Equal mean dependencies (rows 0 and 1 made alike): no shaping at all, every scale exactly 1.
  const alike: RefInputs = {
    ...ref,
    maskedLogprobs: [
      [OLD - 1, OLD - 1, OLD - 1, OLD - 1, OLD - 1],
      [OLD - 1, OLD - 1, OLD - 1, OLD - 1, 0],
      [0, 0, 0, 0, 0],
    ],
  };
  const y = toTf(alike);
  const r = papoLoss(y, cfg);
  assert.equal(r.metrics['actor/vppo_adv_scale_mean'], 1);
  assert.equal(r.metrics['actor/vppo_adv_scale_max'], 1);
  checkAgainstReference(alike, cfg, 'equal means');
  disposeInputs(x);
  disposeInputs(y);
});

test('VPPO equals the float64 reference on random inputs: every aggregation mode, per-response and per-token advantages, zero advantages', () => {
  let n = 0;
  for (const mode of lossAggModes.names()) {
    for (const perToken of [false, true]) {
      for (const [over, what] of [
        [{}, 'preset'],
        [{ vppo_top_token_ratio: 0.15, vppo_adv_floor: 0.5, perception_loss_weight: 0.02, entropy_coef_masked: 0.03 }, 'with PAPO terms'],
        [{ vppo_top_token_ratio: 1, vppo_adv_floor: 0 }, 'all tokens, floor 0'],
      ] as const) {
        const cfg = objectiveConfig({ ...over, loss_agg_mode: mode }, 'vppo');
        // 8 responses of up to 12 tokens, the first empty; masked log-probs far enough off for some k3 clamped at 10 (ties).
        const ref = randomInputs(2000 + n++, 8, 12, perToken);
        checkAgainstReference(ref, cfg, `${what}/${mode}/${perToken ? 'token' : 'response'} advantages`);
        const zero = { ...ref, advantages: perToken ? ref.responseMask.map((r) => r.map(() => 0)) : ref.advantages.map(() => 0) };
        checkAgainstReference(zero, cfg, `${what}/${mode} zero advantages`);
      }
    }
  }
});

test('a micro-batch uses the statistics of its whole mini-batch: min and max over the mini-batch, the mean over the micro-batch', () => {
  const cfg = objectiveConfig({}, 'vppo');
  const all = randomInputs(31, 8, 10);
  const x = toTf(all);
  const stats = tokenWeightingStats(cfg, x);
  const want = refVppoStats(all);
  assert.deepEqual(Object.keys(stats).sort(), ['dependency_max', 'dependency_min']);
  for (const k of Object.keys(want)) assertClose(stats[k], want[k], { rel: 1e-6, abs: 1e-7 }, k);
  disposeInputs(x);
  const rows = (lo: number, hi: number): RefInputs => ({
    logprobs: all.logprobs.slice(lo, hi),
    oldLogprobs: all.oldLogprobs.slice(lo, hi),
    refLogprobs: all.refLogprobs!.slice(lo, hi),
    maskedLogprobs: all.maskedLogprobs!.slice(lo, hi),
    advantages: (all.advantages as number[]).slice(lo, hi),
    responseMask: all.responseMask.slice(lo, hi),
  });
  for (const [lo, hi] of [
    [0, 3],
    [3, 8],
  ]) {
    const micro = rows(lo, hi);
    checkAgainstReference(micro, cfg, `rows ${lo}-${hi} with the mini-batch's statistics`, stats);
    const own = refPapoLoss(micro, cfg).loss;
    const given = refPapoLoss(micro, cfg, { tokenWeightingStats: want }).loss;
    assert.notEqual(own, given, 'the statistics change the loss (else this test checks nothing)');
  }
  // Fewer than two non-empty responses: no statistics, no shaping.
  const one = rows(0, 2); // row 0 is empty
  const y = toTf(one);
  assert.deepEqual(tokenWeightingStats(cfg, y), {});
  assert.equal(papoLoss(y, cfg).metrics['actor/vppo_adv_scale_mean'], 1);
  disposeInputs(y);
});

test('VPPO gradient w.r.t. logprobs matches finite differences of the float64 reference', () => {
  let n = 0;
  for (const mode of lossAggModes.names()) {
    for (const over of [{}, { perception_loss_weight: 0.05, vppo_adv_floor: 0.6 }]) {
      const cfg = objectiveConfig({ ...over, loss_agg_mode: mode }, 'vppo');
      const ref = randomInputs(700 + n++, 5, 7);
      const x = toTf(ref);
      const g = tf.grad((lp: tf.Tensor) => papoLoss({ ...x, logprobs: lp }, cfg).loss)(x.logprobs);
      const got = g.arraySync() as Mat;
      const want = fdGrad(ref, cfg);
      const scale = Math.max(...want.flat().map(Math.abs), 1e-3);
      want.forEach((row, b) => row.forEach((w, t) => assert.ok(Math.abs(got[b][t] - w) <= 2e-4 * scale + 1e-6, `${mode} [${b},${t}]: ${got[b][t]} vs ${w}`)));
      g.dispose();
      disposeInputs(x);
    }
  }
});

test('padding is invisible to VPPO: garbage in padded positions changes neither loss, metrics nor gradient', () => {
  const cfg = objectiveConfig({}, 'vppo');
  const ref = randomInputs(12, 6, 8, true);
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
    let metrics: Record<string, number | undefined> = {};
    const g = tf.grad((lp: tf.Tensor) => {
      const r = papoLoss({ ...x, logprobs: lp }, cfg);
      metrics = r.metrics;
      return r.loss;
    })(x.logprobs);
    const out = g.arraySync() as Mat;
    g.dispose();
    return { metrics, g: out };
  };
  const a = run(clean);
  const b = run(bad);
  for (const [k, v] of Object.entries(a.metrics)) assertClose(b.metrics[k]!, v!, { rel: 1e-6, abs: 1e-7 }, k);
  b.g.forEach((row, i) =>
    row.forEach((v, t) => {
      if (!ref.responseMask[i][t]) assert.ok(v === 0, `padded gradient [${i},${t}] is ${v}`);
      else assertClose(v, a.g[i][t], { rel: 1e-6, abs: 1e-9 });
    }),
  );
  disposeInputs(clean);
  disposeInputs(bad);
});

test('VPPO with every token kept and floor 1 is the plain objective, bit for bit', () => {
  const ref = randomInputs(41, 6, 9);
  const x = toTf(ref);
  const base = objectiveConfig({}, 'vppo');
  const plain = papoLoss(x, { ...base, token_weighting: 'none' });
  const neutral = papoLoss(x, { ...base, vppo_top_token_ratio: 1, vppo_adv_floor: 1 });
  assert.ok(Object.is(neutral.loss.dataSync()[0], plain.loss.dataSync()[0]));
  for (const [k, v] of Object.entries(plain.metrics)) assert.ok(Object.is(neutral.metrics[k], v), k);
  assert.equal(neutral.metrics['actor/vppo_token_fraction'], 1);
  disposeInputs(x);
});

test('a token weighting is a constant: no gradient flows through what it computes from the log-probs', () => {
  // Weights that depend on the current log-probs: the gradient must be that of fixed weights.
  registerTokenWeighting('test_lp_weights', ({ logprobs, advantages }) => ({ weights: tf.exp(logprobs), advantages: tf.mul(advantages, tf.exp(logprobs)) }));
  const ref = randomInputs(8, 4, 5);
  const x = toTf(ref);
  const cfg = objectiveConfig({ token_weighting: 'test_lp_weights', kl_coef: 0 });
  const g = tf.grad((lp: tf.Tensor) => papoLoss({ ...x, logprobs: lp }, cfg).loss)(x.logprobs);
  const w = tf.exp(x.logprobs);
  const plainGrad = tf.grad((lp: tf.Tensor) => {
    const adv = tf.mul(tf.mul(tf.expandDims(x.advantages, 1), w), x.responseMask);
    const r = papoLoss({ ...x, logprobs: lp, advantages: adv }, objectiveConfig({ kl_coef: 0, loss_agg_mode: 'token-mean' }));
    return r.loss;
  })(x.logprobs);
  // d/dlp of token-mean(pg(adv * w) * w) with w constant = w * d/dlp token-mean(pg(adv * w)).
  assertClose(Array.from(g.dataSync()), Array.from(tf.mul(plainGrad, w).dataSync()), { rel: 1e-5, abs: 1e-7 }, 'gradient');
  tf.dispose([g, w, plainGrad]);
  disposeInputs(x);
});

test('the masked-view stage is needed by VPPO without PAPO terms; config checks name the key', () => {
  const v = objectiveConfig({}, 'vppo');
  assert.equal(v.perception_loss_weight, 0);
  assert.equal(v.entropy_coef_masked, 0);
  assert.equal(needsMaskedLogprobs(v), true);
  assert.equal(needsMaskedLogprobs(objectiveConfig({}, 'grpo')), false);
  assert.equal(needsMaskedLogprobs(objectiveConfig({}, 'papo_g')), true);
  assert.equal(needsMaskedLogprobs(objectiveConfig({ token_weighting: 'vppo' }, 'grpo')), true);
  const x = toTf(randomInputs(4));
  assert.throws(() => papoLoss({ ...x, maskedLogprobs: undefined }, v), /token_weighting vppo needs maskedLogprobs/);
  disposeInputs(x);
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ vppo_top_token_ratio: 0 }, /vppo_top_token_ratio/],
    [{ vppo_top_token_ratio: 1.5 }, /vppo_top_token_ratio/],
    [{ vppo_adv_floor: -0.1 }, /vppo_adv_floor/],
    [{ vppo_adv_floor: 1.2 }, /vppo_adv_floor/],
    [{ token_weighting: 'spotlight' }, /token_weighting: unknown token weighting "spotlight"; known: none, vppo.* \(add one with registerTokenWeighting\)/],
    [{ token_weighting: 'vppo', recompute_masked_logprobs: true }, /recompute_masked_logprobs: token_weighting vppo reads the masked view/],
  ];
  for (const [input, re] of bad) assert.throws(() => objectiveConfig(input as never), re, JSON.stringify(input));
  assert.throws(() => registerTokenWeighting('vppo', () => ({})), /token weighting "vppo" is already registered/);
});

test('no tensor leaks: VPPO loss, metrics, statistics and gradient across repeated steps', () => {
  const ref = randomInputs(5, 6, 9);
  const x = toTf(ref);
  const cfg = objectiveConfig({ loss_agg_mode: 'seq-mean-token-mean' }, 'vppo');
  const step = () => {
    const g = tf.grad((lp: tf.Tensor) => papoLoss({ ...x, logprobs: lp }, cfg).loss)(x.logprobs);
    g.dispose();
    papoLoss(x, cfg, { tokenWeightingStats: tokenWeightingStats(cfg, x) }).loss.dispose();
  };
  step();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) step();
  assert.equal(tf.memory().numTensors, before);
  disposeInputs(x);
});
