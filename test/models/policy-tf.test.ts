import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initTf, tf } from '../../util/tf-backend.ts';
import { MASK_VALUE, policyConfig, policyDims, type PolicyConfigInput } from '../../models/config.ts';
import { initParams, paramSpecs, type Params } from '../../models/params.ts';
import { type KeyValues, TfPolicy, decoderLogits, embedSequence, embedText, forwardLogProbs } from '../../models/policy-tf.ts';
import { textBatch, patchify, attentionBias, buildPromptBatch, buildResponseBatch, buildTextBatch } from '../../models/batch.ts';
import { BOS_ID, EOS_ID, PAD_ID, encode, encodePrompt, encodeResponse } from '../../models/tokenizer.ts';
import { makeImage, type RgbImage } from '../../util/image.ts';
import { Rng } from '../../util/rng.ts';
import { referenceForward } from './reference-forward.ts';

await initTf();

/** d=8, 1 layer, 2 heads, 4x4 images of 2x2 patches; a wide init so every path matters numerically. */
const TINY: PolicyConfigInput = {
  imageHeight: 4,
  imageWidth: 4,
  patchSize: 2,
  dModel: 8,
  nHeads: 2,
  nLayers: 1,
  mlpRatio: 2,
  maxPromptLen: 8,
  maxResponseLen: 6,
  initStd: 0.5,
  seed: 3,
};

function randomImage(rng: Rng, h: number, w: number): RgbImage {
  return makeImage(
    h,
    w,
    Uint8Array.from({ length: h * w * 3 }, () => rng.int(256)),
  );
}

const prompts = ['1+2', 'x'];
/** The same prompts as token ids, for the reference forward (which does its own padding and masking). */
const promptIds = prompts.map(encodePrompt);
const responses = [
  [...encode('3'), EOS_ID],
  [...encode('ab'), ...encode('c'), EOS_ID],
];

function run(policy: TfPolicy, images: RgbImage[], p: (string | number[])[], r: number[][], promptLen?: number, withEntropy = true) {
  const c = policy.config;
  return tf.tidy(() => {
    const out = policy.logProbs({ images, promptIds: buildPromptBatch(p, c, promptLen), responseIds: r }, { withEntropy });
    return { lp: out.logprobs.arraySync(), ent: out.entropy?.arraySync(), mask: out.mask.arraySync() };
  });
}

for (const variant of [{}, { nEncoderLayers: 1, tieEmbeddings: false }] as PolicyConfigInput[]) {
  test(`policy-tf: equals the float64 reference forward (${JSON.stringify(variant)})`, () => {
    const c = policyConfig({ ...TINY, ...variant });
    const rng = Rng.seeded(1);
    const images = [randomImage(rng, 4, 4), randomImage(rng, 4, 4)];
    const policy = new TfPolicy(c);
    const got = run(policy, images, prompts, responses);
    const ref = referenceForward(c, initParams(c), images, promptIds, responses);
    for (let b = 0; b < 2; b++) {
      for (let t = 0; t < 4; t++) {
        assert.ok(Math.abs(got.lp[b][t] - ref.logprobs[b][t]) < 1e-4, `logprob [${b},${t}] ${got.lp[b][t]} vs ${ref.logprobs[b][t]}`);
        assert.ok(Math.abs(got.ent![b][t] - ref.entropy[b][t]) < 1e-4, `entropy [${b},${t}] ${got.ent![b][t]} vs ${ref.entropy[b][t]}`);
      }
    }
    policy.dispose();
  });
}

test('policy-tf: log-probs <= 0 and 0 at PAD; entropy in [0, log V] and 0 at PAD', () => {
  const c = policyConfig({});
  const rng = Rng.seeded(2);
  const policy = new TfPolicy(c);
  const images = [randomImage(rng, 28, 56), randomImage(rng, 28, 56)];
  const { lp, ent, mask } = run(policy, images, prompts, responses);
  assert.deepEqual(mask, [
    [1, 1, 0, 0],
    [1, 1, 1, 1],
  ]);
  for (let b = 0; b < 2; b++) {
    for (let t = 0; t < 4; t++) {
      if (mask[b][t] === 0) {
        assert.ok(lp[b][t] === 0 && ent![b][t] === 0, `PAD [${b},${t}]: ${lp[b][t]}, ${ent![b][t]}`);
      } else {
        assert.ok(lp[b][t] < 0, `logprob ${lp[b][t]}`);
        assert.ok(ent![b][t] > 0 && ent![b][t] <= Math.log(c.vocabSize) + 1e-5);
      }
    }
  }
  policy.dispose();
});

test('policy-tf: invariant to extra left padding of the prompt (within 1e-5)', () => {
  for (const cfg of [TINY, {}]) {
    const c = policyConfig(cfg);
    const rng = Rng.seeded(3);
    const policy = new TfPolicy(c, initParams(c));
    const images = [randomImage(rng, c.imageHeight, c.imageWidth), randomImage(rng, c.imageHeight, c.imageWidth)];
    const a = run(policy, images, prompts, responses);
    const b = run(policy, images, prompts, responses, 7);
    // Already-padded rows are accepted as they are.
    const padded = run(policy, images, [[PAD_ID, PAD_ID, BOS_ID, ...encode('1+2')], 'x'], responses);
    for (let i = 0; i < 2; i++) {
      for (let t = 0; t < 4; t++) {
        assert.ok(Math.abs(a.lp[i][t] - b.lp[i][t]) <= 1e-5, `[${i},${t}] ${a.lp[i][t]} vs ${b.lp[i][t]}`);
        assert.ok(Math.abs(a.ent![i][t] - b.ent![i][t]) <= 1e-5);
        assert.ok(Math.abs(a.lp[i][t] - padded.lp[i][t]) <= 1e-5);
      }
    }
    policy.dispose();
  }
});

test('policy-tf: causal: each log-prob equals the one computed from its prefix alone', () => {
  const c = policyConfig(TINY);
  const rng = Rng.seeded(4);
  const policy = new TfPolicy(c);
  const images = [randomImage(rng, 4, 4)];
  const resp = [...encode('a<answer>7'), EOS_ID];
  const full = run(policy, images, ['q'], [resp]).lp[0];
  for (let t = 0; t < resp.length; t++) {
    const prefix = run(policy, images, ['q'], [resp.slice(0, t + 1)]).lp[0];
    assert.ok(Math.abs(prefix[t] - full[t]) < 1e-5, `token ${t}: ${prefix[t]} vs ${full[t]}`);
  }
  policy.dispose();
});

test('policy-tf: the log-probs depend on the image', () => {
  const c = policyConfig(TINY);
  const rng = Rng.seeded(5);
  const policy = new TfPolicy(c);
  const img = randomImage(rng, 4, 4);
  const other = makeImage(
    4,
    4,
    img.data.map((v) => 255 - v),
  );
  const a = run(policy, [img], ['q'], [encodeResponse('12')]).lp[0];
  const b = run(policy, [other], ['q'], [encodeResponse('12')]).lp[0];
  const diff = Math.max(...a.map((v, t) => Math.abs(v - b[t])));
  assert.ok(diff > 1e-2, `max |change| ${diff}`);
  policy.dispose();
});

test('policy-tf: gradient of sum(logprobs) matches float64 central differences for every parameter', () => {
  const c = policyConfig({ ...TINY, nEncoderLayers: 1, tieEmbeddings: false });
  const rng = Rng.seeded(6);
  const images = [randomImage(rng, 4, 4), randomImage(rng, 4, 4)];
  const params = initParams(c);
  const policy = new TfPolicy(c, params);
  const text = textBatch(prompts, responses, c);
  const patches = patchify(images, c);
  const names = paramSpecs(c).map((s) => s.name);
  const grads: Record<string, Float32Array> = {};
  tf.tidy(() => {
    const { grads: g } = tf.variableGrads(() => tf.sum(forwardLogProbs(c, policy.vars, patches, text).logprobs) as tf.Scalar, policy.variableList());
    for (const n of names) grads[n] = (g[policy.vars[n].name].dataSync() as Float32Array).slice();
  });
  const f = (p: Params) =>
    referenceForward(c, p, images, promptIds, responses)
      .logprobs.flat()
      .reduce((s, v) => s + v, 0);
  const eps = 1e-4;
  for (const n of names) {
    // Directional derivative along a random unit direction u: grad . u vs (f(p + eps u) - f(p - eps u)) / 2 eps.
    const u = Float64Array.from(params[n], () => rng.normal());
    const norm = Math.hypot(...u);
    const shifted = (sign: number) => ({ ...params, [n]: Float32Array.from(params[n], (v, j) => v + (sign * eps * u[j]) / norm) });
    // Float32 storage of p +- eps u rounds the step; measure the step actually taken.
    const plus = shifted(1);
    const minus = shifted(-1);
    let analytic = 0;
    let dirNorm2 = 0;
    for (let j = 0; j < u.length; j++) {
      const step = plus[n][j] - minus[n][j];
      analytic += grads[n][j] * step;
      dirNorm2 += step * step;
    }
    const numeric = f(plus) - f(minus);
    const scale = Math.max(Math.abs(numeric), Math.abs(analytic), 1e-3 * Math.sqrt(dirNorm2));
    assert.ok(Math.abs(numeric - analytic) / scale < 2e-3, `${n}: analytic ${analytic} vs numeric ${numeric}`);
  }
  policy.dispose();
});

test('policy-tf: decoderLogits, prefilled then fed one token at a time through its key/value cache, equals the reference distributions', () => {
  const c = policyConfig({ ...TINY, nEncoderLayers: 1, tieEmbeddings: false });
  const { nPatch } = policyDims(c);
  const V = c.vocabSize;
  const rng = Rng.seeded(7);
  const images = [randomImage(rng, 4, 4), randomImage(rng, 4, 4)];
  const params = initParams(c);
  const policy = new TfPolicy(c, params);
  const ref = referenceForward(c, params, images, promptIds, responses);
  const pb = buildPromptBatch(prompts, c);
  const text = buildTextBatch(pb, { batch: 2, length: 0, ids: new Int32Array(0) });
  const L0 = nPatch + pb.length;
  // Key mask of the cache: prompt PADs, then (per fed token) PAD once a row's response has ended.
  const keyBias = [0, 1].map((b) => Array.from({ length: L0 }, (_, k) => (k >= nPatch && text.keyValid[b * pb.length + k - nPatch] === 0 ? MASK_VALUE : 0)));
  const Lr = Math.max(...responses.map((r) => r.length));
  const check = (logits: tf.Tensor, t: number) => {
    const logp = tf.tidy(() => tf.logSoftmax(tf.reshape(logits, [2, V])).arraySync() as number[][]);
    for (let b = 0; b < 2; b++) {
      if (t >= responses[b].length) continue; // past the row's end: nothing is predicted there
      for (let v = 0; v < V; v++) {
        assert.ok(Math.abs(logp[b][v] - ref.logDist[b][t][v]) < 1e-4, `slot ${t} row ${b} token ${v}: ${logp[b][v]} vs ${ref.logDist[b][t][v]}`);
      }
    }
  };
  tf.tidy(() => {
    const x = embedSequence(c, policy.vars, patchify(images, c), text);
    let { logits, cache } = decoderLogits(c, policy.vars, x, tf.tensor4d(attentionBias(text, nPatch), [2, 1, L0, L0]), { rows: [L0 - 1, 1] });
    assert.deepEqual(logits.shape, [2, 1, V]);
    check(logits, 0);
    for (let t = 0; t + 1 < Lr; t++) {
      const ids = [0, 1].map((b) => responses[b][t] ?? PAD_ID);
      ids.forEach((id, b) => keyBias[b].push(id === PAD_ID ? MASK_VALUE : 0));
      const pos = [0, 1].map((b) => pb.length - pb.pads[b] + t);
      const xt = embedText(policy.vars, tf.tensor2d(ids, [2, 1], 'int32'), tf.tensor2d(pos, [2, 1], 'int32'));
      const past: KeyValues[] = cache;
      ({ logits, cache } = decoderLogits(c, policy.vars, xt, tf.tensor4d(keyBias.flat(), [2, 1, 1, L0 + t + 1]), { past }));
      assert.deepEqual(cache[0].kT.shape, [2, c.nHeads, c.dModel / c.nHeads, L0 + t + 1]);
      check(logits, t + 1);
    }
  });
  policy.dispose();
});

test('policy-tf: setParams/getParams round-trip and a clear error on a wrong batch', () => {
  const c = policyConfig(TINY);
  const policy = new TfPolicy(c);
  const p = initParams(c, 9);
  policy.setParams(p);
  assert.deepEqual(policy.getParams()['dec.0.w1'], p['dec.0.w1']);
  const rng = Rng.seeded(1);
  assert.throws(() => policy.logProbs({ images: [randomImage(rng, 4, 4)], promptIds: ['a', 'b'], responseIds: [[9], [9]] }), /1 images for 2 prompts/);
  assert.throws(() => policy.logProbs({ images: [randomImage(rng, 4, 4)], promptIds: ['a'], responseIds: buildResponseBatch([[9], [9]], c) }), /2 responses/);
  policy.dispose();
});
