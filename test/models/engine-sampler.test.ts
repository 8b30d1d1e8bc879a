/** Token choice: greedy, temperature, top-k, top-p, and the two reported log-probs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../util/rng.ts';
import { chooseToken, checkSamplingOptions } from '../../models/engine/sampler.ts';
import { BOS_ID, PAD_ID } from '../../models/tokenizer.ts';

const logSoftmax = (z: number[]) => {
  const m = Math.max(...z);
  const lse = m + Math.log(z.reduce((s, v) => s + Math.exp(v - m), 0));
  return z.map((v) => v - lse);
};
// ids 0 (PAD) and 2 (BOS) are the most likely on purpose: they must never be chosen.
const LOGITS = [5, 0.5, 4, 2.0, 1.0, 1.5, -1];

test('greedy picks the argmax among allowed tokens and reports the model log-prob', () => {
  const c = chooseToken(LOGITS, { temperature: 0, topK: 0, topP: 1 }, Rng.seeded(1));
  assert.equal(c.token, 3);
  assert.equal(c.samplingLogprob, 0);
  assert.ok(Math.abs(c.logprob - logSoftmax(LOGITS)[3]) < 1e-12);
});

test('top-k 1 and a tiny top-p both reduce to greedy; PAD and BOS are never sampled', () => {
  for (let s = 0; s < 50; s++) {
    assert.equal(chooseToken(LOGITS, { temperature: 1, topK: 1, topP: 1 }, Rng.seeded(s)).token, 3);
    const c = chooseToken(LOGITS, { temperature: 1, topK: 0, topP: 1e-6 }, Rng.seeded(s));
    assert.equal(c.token, 3);
    assert.ok(Math.abs(c.samplingLogprob) < 1e-12);
    const free = chooseToken(LOGITS, { temperature: 2, topK: 0, topP: 1 }, Rng.seeded(s));
    assert.ok(free.token !== PAD_ID && free.token !== BOS_ID);
  }
});

test('sampling frequencies follow the truncated tempered distribution it reports', () => {
  const o = { temperature: 0.7, topK: 3, topP: 1 };
  const counts = new Map<number, number>();
  const reported = new Map<number, number>();
  const rng = Rng.seeded(3);
  const n = 20000;
  for (let i = 0; i < n; i++) {
    const c = chooseToken(LOGITS, o, rng);
    counts.set(c.token, (counts.get(c.token) ?? 0) + 1);
    reported.set(c.token, c.samplingLogprob);
    assert.ok(Math.abs(c.logprob - logSoftmax(LOGITS)[c.token]) < 1e-12);
  }
  // top-3 of the allowed tokens {1, 3, 4, 5, 6} are 3, 5, 4.
  assert.deepEqual([...counts.keys()].sort(), [3, 4, 5]);
  const w = [3, 4, 5].map((j) => Math.exp(LOGITS[j] / 0.7));
  const z = w.reduce((a, b) => a + b, 0);
  [3, 4, 5].forEach((j, i) => {
    assert.ok(Math.abs(reported.get(j)! - Math.log(w[i] / z)) < 1e-12);
    assert.ok(Math.abs(counts.get(j)! / n - w[i] / z) < 0.015, `token ${j}: ${counts.get(j)! / n} vs ${w[i] / z}`);
  });
});

test('same generator state gives the same choice; bad options are rejected by name', () => {
  const a = Array.from({ length: 20 }, (_, i) => chooseToken(LOGITS, { temperature: 1.3, topK: 0, topP: 0.9 }, Rng.derive(9, i)).token);
  const b = Array.from({ length: 20 }, (_, i) => chooseToken(LOGITS, { temperature: 1.3, topK: 0, topP: 0.9 }, Rng.derive(9, i)).token);
  assert.deepEqual(a, b);
  assert.throws(() => checkSamplingOptions({ temperature: -1, topK: 0, topP: 1 }), /temperature/);
  assert.throws(() => checkSamplingOptions({ temperature: 1, topK: 1.5, topP: 1 }), /topK/);
  assert.throws(() => checkSamplingOptions({ temperature: 1, topK: 0, topP: 0 }), /topP/);
});
