/**
 * ArrayAdamW (plain Float32Arrays, models/adamw.ts) against the tfjs AdamW (models/optimizer.ts): same
 * parameters, moments and step infos after several steps with decay, clipping and a cosine schedule;
 * state export/import; a non-finite gradient leaves everything untouched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initTf, tf } from '../../util/tf-backend.ts';
import { AdamW } from '../../models/optimizer.ts';
import { ArrayAdamW, adamWStateFromRecord, adamWStateToRecord, type AdamWConfigInput } from '../../models/adamw.ts';
import { Rng } from '../../util/rng.ts';

await initTf();

const SHAPES: Record<string, number[]> = { w: [3, 4], b: [4], emb: [5, 2], g: [2] };
const CONFIG: AdamWConfigInput = {
  lr: 0.05,
  beta1: 0.8,
  beta2: 0.95,
  eps: 1e-6,
  weightDecay: 0.1,
  maxGradNorm: 1.5,
  schedule: { kind: 'cosine', warmupSteps: 2, totalSteps: 6, minLrRatio: 0.1 },
};

function randomArrays(rng: Rng, scale: number): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const [n, s] of Object.entries(SHAPES)) out[n] = Float32Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => scale * rng.normal());
  return out;
}

/** max |a - b| / max(1, |b|) over every array of two records */
function maxRelDiff(a: Record<string, Float32Array>, b: Record<string, Float32Array>): number {
  let m = 0;
  for (const n of Object.keys(b)) b[n].forEach((y, i) => (m = Math.max(m, Math.abs(a[n][i] - y) / Math.max(1, Math.abs(y)))));
  return m;
}

test('ArrayAdamW equals the tfjs AdamW over 7 steps (decay on matrices only, clipping, cosine schedule)', () => {
  const rng = Rng.seeded(1);
  const init = randomArrays(rng, 1);
  const vars = Object.fromEntries(Object.entries(init).map(([n, a]) => [n, tf.variable(tf.tensor(a, SHAPES[n]))]));
  const tfOpt = new AdamW(vars, CONFIG);
  const params = Object.fromEntries(Object.entries(init).map(([n, a]) => [n, a.slice()]));
  const arr = new ArrayAdamW(params, SHAPES, CONFIG);
  for (let s = 0; s < 7; s++) {
    // Some steps clip (norm well above 1.5), some do not.
    const grads = randomArrays(rng, s % 2 ? 2 : 0.1);
    const tfGrads = Object.fromEntries(Object.entries(grads).map(([n, a]) => [n, tf.tensor(a, SHAPES[n])]));
    const a = tfOpt.applyGradients(tfGrads);
    const b = arr.applyGradients(grads);
    tf.dispose(Object.values(tfGrads));
    assert.equal(b.step, a.step);
    assert.ok(Math.abs(b.lr - a.lr) < 1e-12, `lr ${b.lr} vs ${a.lr}`);
    assert.ok(Math.abs(b.gradNorm - a.gradNorm) <= 1e-6 * a.gradNorm, `norm ${b.gradNorm} vs ${a.gradNorm}`);
    const tfParams = Object.fromEntries(Object.entries(vars).map(([n, v]) => [n, v.dataSync() as Float32Array]));
    assert.ok(maxRelDiff(params, tfParams) < 1e-6, `step ${s + 1}: parameters differ by ${maxRelDiff(params, tfParams)}`);
  }
  const sa = tfOpt.exportState();
  const sb = arr.exportState();
  assert.equal(sb.step, 7);
  assert.ok(maxRelDiff(sb.m, sa.m) < 1e-6 && maxRelDiff(sb.v, sa.v) < 1e-6, 'moments differ');
  // Matrices decayed, vectors not: with zero gradients only decay and the moments move the parameters.
  tfOpt.dispose();
  tf.dispose(Object.values(vars));
});

test('ArrayAdamW state: export/import (also via the flat record) continues identically; bad states are named', () => {
  const rng = Rng.seeded(2);
  const p1 = randomArrays(rng, 1);
  const p2 = Object.fromEntries(Object.entries(p1).map(([n, a]) => [n, a.slice()]));
  const a = new ArrayAdamW(p1, SHAPES, CONFIG);
  const steps = [randomArrays(rng, 1), randomArrays(rng, 1), randomArrays(rng, 1)];
  a.applyGradients(steps[0]);
  const b = new ArrayAdamW(p2, SHAPES, CONFIG);
  b.applyGradients(steps[0]);
  b.importState(adamWStateFromRecord(adamWStateToRecord(a.exportState())));
  for (const g of steps.slice(1)) {
    a.applyGradients(g);
    b.applyGradients(g);
  }
  assert.deepEqual(b.exportState(), a.exportState());
  assert.deepEqual(p2, p1);
  const st = a.exportState();
  assert.throws(() => b.importState({ ...st, step: -1 }), /step must be a non-negative integer/);
  assert.throws(() => b.importState({ ...st, m: { ...st.m, nope: new Float32Array(1) } }), /m\['nope'\] is not a parameter/);
  const { w: _w, ...noW } = st.v;
  assert.throws(() => b.importState({ ...st, v: noW }), /missing v\['w'\]/);
  assert.throws(() => b.importState({ ...st, m: { ...st.m, b: new Float32Array(3) } }), /m\['b'\] has 3 values, expected 4/);
  assert.throws(() => new ArrayAdamW({ w: new Float32Array(5) }, { w: [2, 2] }), /'w' has 5 values/);
  assert.throws(() => new ArrayAdamW({}, {}, { lr: -1 }), /lr/);
});

test('ArrayAdamW: a non-finite gradient throws and changes nothing; a missing gradient is named', () => {
  const rng = Rng.seeded(3);
  const params = randomArrays(rng, 1);
  const opt = new ArrayAdamW(params, SHAPES, CONFIG);
  opt.applyGradients(randomArrays(rng, 1));
  const before = { state: opt.exportState(), params: Object.fromEntries(Object.entries(params).map(([n, a]) => [n, a.slice()])) };
  const bad = randomArrays(rng, 1);
  bad.b[2] = NaN;
  assert.throws(() => opt.applyGradients(bad), /gradient norm is NaN at step 2; parameters left unchanged/);
  assert.deepEqual(opt.exportState(), before.state);
  assert.deepEqual(params, before.params);
  const { g: _g, ...missing } = randomArrays(rng, 1);
  assert.throws(() => opt.applyGradients(missing), /no gradient for parameter 'g'/);
  assert.equal(opt.step, 1);
});
