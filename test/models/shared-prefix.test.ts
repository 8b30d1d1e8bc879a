/**
 * Teacher-forced log-probs with the prefix shared across a prompt's responses (LogProbRequest.sharePrefix,
 * models/onnx/shared-prefix-graph.ts), against the full pass and against the float64 reference forward; and
 * several requests in one call (logProbViews) against separate calls, bit for bit.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { policyConfig } from '../../models/config.ts';
import { PolicyEngine } from '../../models/engine/engine.ts';
import { OrtPolicyRunner } from '../../models/engine/runner.ts';
import { packWeights } from '../../models/engine/weights.ts';
import { EOS_ID, PAD_ID } from '../../models/tokenizer.ts';
import type { RgbImage } from '../../util/image.ts';
import { Rng } from '../../util/rng.ts';
import { randomImage, randomParams, referenceForward } from './reference-forward.ts';

const cfg = policyConfig({ imageHeight: 8, imageWidth: 12, patchSize: 4, dModel: 16, nHeads: 2, nLayers: 2, maxPromptLen: 8, maxResponseLen: 6 });
const params = randomParams(cfg, 31);
const refParams = randomParams(cfg, 32);

// Three prompts (of 4, 2 and 6 tokens) with G = 3 responses each, of varied lengths (some end with EOS, one is empty of real tokens but EOS).
const G = 3;
const prompts = [
  [2, 10, 11, 12],
  [2, 20],
  [2, 30, 31, 32, 33, 34],
];
const promptImages = [randomImage(cfg, 1), randomImage(cfg, 2), randomImage(cfg, 3)];
const rng = Rng.seeded(5);
const responses: number[][] = [];
for (let p = 0; p < prompts.length; p++) {
  for (let g = 0; g < G; g++) {
    const len = 1 + rng.int(cfg.maxResponseLen);
    const r = Array.from({ length: len }, () => 4 + rng.int(cfg.vocabSize - 4));
    if (g === 1) r[len - 1] = EOS_ID;
    responses.push(r);
  }
}
const rows = {
  // copies of the prompt's image and prompt per row: the runner finds shared prefixes by content
  images: responses.map((_, i) => ({ ...promptImages[Math.floor(i / G)], data: promptImages[Math.floor(i / G)].data.slice() }) as RgbImage),
  prompts: responses.map((_, i) => prompts[Math.floor(i / G)].slice()),
  responses,
};

let runner: OrtPolicyRunner;
before(async () => {
  runner = await OrtPolicyRunner.create(cfg, { intraOpThreads: 1 });
  runner.setWeights(packWeights(cfg, params, 1));
  runner.setWeights(packWeights(cfg, refParams, 0), 'reference');
});
after(() => runner.release());

const maxDiff = (a: ArrayLike<number>[], b: ArrayLike<number>[]) => {
  let m = 0;
  a.forEach((row, i) => {
    assert.equal(row.length, b[i].length, `row ${i} length`);
    for (let t = 0; t < row.length; t++) m = Math.max(m, Math.abs(row[t] - b[i][t]));
  });
  return m;
};

test('shared prefix: the same log-probs and entropies as the full pass within 2e-6, and as the float64 reference', async () => {
  for (const weights of ['latest', 'reference'] as const) {
    const full = await runner.logProbs({ ...rows, weights, withEntropy: true });
    const shared = await runner.logProbs({ ...rows, weights, withEntropy: true, sharePrefix: true });
    const dLp = maxDiff(shared.logprobs, full.logprobs);
    const dEnt = maxDiff(shared.entropy ?? [], full.entropy ?? []);
    assert.ok(dLp <= 2e-6, `${weights}: log-probs differ by ${dLp}`);
    assert.ok(dEnt <= 2e-6, `${weights}: entropies differ by ${dEnt}`);
    assert.ok(shared.logprobs.some((r, i) => r.some((x, t) => x !== full.logprobs[i][t])) || dLp === 0);
    const ref = referenceForward(cfg, weights === 'latest' ? params : refParams, rows.images, rows.prompts, responses);
    const dRef = maxDiff(
      shared.logprobs,
      ref.logprobs.map((r, i) => r.slice(0, responses[i].length)),
    );
    assert.ok(dRef <= 2e-5, `${weights}: against the reference ${dRef}`);
    assert.equal(shared.version, full.version);
  }
});

test('shared prefix: rows of different prompts or images between rows of one prompt start a new prefix; right-padded responses score 0 at PAD', async () => {
  // Interleave the prompts (no two consecutive rows share a prefix), change one row's image, pad two responses.
  const order = [0, 3, 6, 1, 4, 7, 2, 5, 8];
  const images = order.map((i) => rows.images[i]);
  images[4] = randomImage(cfg, 9);
  const req = {
    images,
    prompts: order.map((i) => rows.prompts[i]),
    responses: order.map((i, j) => (j % 4 === 0 ? [...responses[i], PAD_ID, PAD_ID].slice(0, cfg.maxResponseLen) : responses[i])),
  };
  const full = await runner.logProbs(req);
  const shared = await runner.logProbs({ ...req, sharePrefix: true });
  assert.ok(maxDiff(shared.logprobs, full.logprobs) <= 2e-6);
  shared.logprobs.forEach((r, j) => r.forEach((x, t) => (req.responses[j][t] === PAD_ID ? assert.ok(x === 0, `row ${j} slot ${t}: ${x}`) : undefined)));
});

test('shared prefix: prompts of one token (no prefix to share) take the full pass', async () => {
  const req = { images: rows.images.slice(0, 2), prompts: [[2], [2]], responses: responses.slice(0, 2) };
  assert.deepEqual((await runner.logProbs({ ...req, sharePrefix: true })).logprobs, (await runner.logProbs(req)).logprobs);
});

test('logProbViews: one call for the masked view and the reference equals two calls, bit for bit; an error names the request', async () => {
  const engine = await PolicyEngine.create(cfg, { intraOpThreads: 1 });
  try {
    await engine.setWeights(params, 1);
    await engine.setReferenceWeights(refParams);
    const masked = { ...rows, images: rows.images.map((im) => ({ ...im, data: new Uint8Array(im.data.length) })), weights: 1 };
    const reference = { ...rows, weights: 'reference' as const };
    for (const sharePrefix of [false, true]) {
      const [m, r] = await engine.logProbViews([
        { ...masked, sharePrefix },
        { ...reference, sharePrefix },
      ]);
      assert.deepEqual(m, await engine.logProbs({ ...masked, sharePrefix }));
      assert.deepEqual(r, await engine.logProbs({ ...reference, sharePrefix }));
    }
    await assert.rejects(engine.logProbViews([reference, { ...reference, weights: 7 }]), /request 1: logProbs: policy version 7 is no longer held/);
  } finally {
    await engine.close();
  }
});
