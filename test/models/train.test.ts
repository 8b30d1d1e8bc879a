import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initTf, tf } from '../../util/tf-backend.ts';
import { policyConfig } from '../../models/config.ts';
import { TfPolicy } from '../../models/policy-tf.ts';
import { AdamW } from '../../models/optimizer.ts';
import { buildPromptBatch, buildResponseBatch } from '../../models/batch.ts';
import { encodeResponse } from '../../models/tokenizer.ts';
import { makeImage, type RgbImage } from '../../util/image.ts';

await initTf();

// A toy supervised task where the answer is read off the image: a bright left or right half.
const c = policyConfig({
  imageHeight: 4,
  imageWidth: 8,
  patchSize: 2,
  dModel: 32,
  nHeads: 2,
  nLayers: 1,
  mlpRatio: 2,
  maxPromptLen: 8,
  maxResponseLen: 12,
  seed: 1,
});
function half(left: boolean): RgbImage {
  const img = makeImage(4, 8);
  for (let y = 0; y < 4; y++) for (let x = 0; x < 8; x++) if (x < 4 === left) img.data.fill(255, (y * 8 + x) * 3, (y * 8 + x) * 3 + 3);
  return img;
}
const images = [half(true), half(false), half(true), half(false)];
const prompt = buildPromptBatch(['side?', 'side?', 'which', 'which'], c);
const response = buildResponseBatch(['<answer>L</answer>', '<answer>R</answer>', '<answer>L</answer>', '<answer>R</answer>'].map(encodeResponse), c);
const crossEntropy = (policy: TfPolicy) => () => {
  const { logprobs, mask } = policy.logProbs({ images, promptIds: prompt, responseIds: response });
  return tf.neg(tf.div(tf.sum(logprobs), tf.sum(mask))) as tf.Scalar;
};

test('a tiny policy trained with AdamW drives cross-entropy down on a fixed batch; tensors stay flat', () => {
  const policy = new TfPolicy(c);
  const opt = new AdamW(policy.vars, { lr: 1e-2, weightDecay: 0.01, maxGradNorm: 1, schedule: { kind: 'linear-warmup', warmupSteps: 5 } });
  const first = opt.minimize(crossEntropy(policy));
  const tensorsAfterFirst = tf.memory().numTensors;
  let last = first;
  for (let i = 0; i < 39; i++) {
    last = opt.minimize(crossEntropy(policy));
    assert.equal(tf.memory().numTensors, tensorsAfterFirst, `tensor count changed at step ${last.step}`);
  }
  assert.equal(last.step, 40);
  assert.ok(Number.isFinite(first.loss) && first.loss > 3, `initial loss ${first.loss}`);
  assert.ok(last.loss < 0.5 * first.loss, `loss ${first.loss} -> ${last.loss}`);
  // The answer token (after '<answer>') is read from the image: both sides predicted confidently.
  const lp = tf.tidy(() => policy.logProbs({ images, promptIds: prompt, responseIds: response }).logprobs.arraySync());
  for (let b = 0; b < 4; b++) assert.ok(lp[b][1] > Math.log(0.5), `row ${b}: answer log-prob ${lp[b][1]}`);
  opt.dispose();
  policy.dispose();
});

test('a checkpoint (params + optimizer state) resumes to the same next step', () => {
  const a = new TfPolicy(c);
  const optA = new AdamW(a.vars, { lr: 3e-3 });
  for (let i = 0; i < 3; i++) optA.minimize(crossEntropy(a));
  const params = a.getParams();
  const state = optA.exportState();
  const lossA = optA.minimize(crossEntropy(a)).loss;

  const b = new TfPolicy(c, params);
  const optB = new AdamW(b.vars, { lr: 3e-3 });
  optB.importState(state);
  const lossB = optB.minimize(crossEntropy(b)).loss;
  assert.equal(lossB, lossA);
  const pa = a.getParams();
  const pb = b.getParams();
  for (const name of Object.keys(pa)) assert.deepEqual(pb[name], pa[name], name);
  for (const x of [optA, optB, a, b]) x.dispose();
});
