/**
 * The worker-thread engine end to end: reproducible seeded sampling, greedy = argmax of teacher forcing,
 * image dependence, versioned weight updates (also mid-call), and failures surfacing as rejections.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { policyConfig } from '../../models/config.ts';
import { PolicyEngine } from '../../models/engine/engine.ts';
import { EOS_ID } from '../../models/tokenizer.ts';
import { makeImage } from '../../util/image.ts';
import { randomImage, randomParams, referenceForward } from './reference-forward.ts';

const cfg = policyConfig({ imageHeight: 8, imageWidth: 12, patchSize: 4, dModel: 16, nHeads: 2, nLayers: 2, maxPromptLen: 8, maxResponseLen: 6 });
const paramsA = randomParams(cfg, 21);
const paramsB = randomParams(cfg, 22);
const images = [randomImage(cfg, 1), randomImage(cfg, 2)];
const prompts = [
  [2, 10, 11, 12],
  [2, 20],
];
let engine: PolicyEngine;

before(async () => {
  engine = await PolicyEngine.create(cfg, { intraOpThreads: 1 });
  await engine.setWeights(paramsA, 1);
});
after(async () => {
  await engine.close();
});

const tokensOf = (r: { responses: { tokens: Int32Array }[] }) => r.responses.map((x) => Array.from(x.tokens));

test('a fixed seed reproduces the samples; another seed changes them; batch composition does not matter', async () => {
  const req = { images, prompts, n: 3, seed: 42, temperature: 1, topP: 0.95, topK: 50 };
  const a = await engine.sample(req);
  const b = await engine.sample(req);
  assert.deepEqual(tokensOf(a), tokensOf(b));
  assert.deepEqual(
    a.responses.map((x) => Array.from(x.samplingLogprobs)),
    b.responses.map((x) => Array.from(x.samplingLogprobs)),
  );
  const c = await engine.sample({ ...req, seed: 43 });
  assert.notDeepEqual(tokensOf(a), tokensOf(c));
  // Prompt 1 alone (as prompt 0 of a batch of one) would use another stream; the same stream id gives the same tokens.
  const alone = await engine.sample({ ...req, images: [images[0]], prompts: [prompts[0]] });
  assert.deepEqual(tokensOf(alone), tokensOf(a).slice(0, 3));
  assert.equal(a.responses.length, 6);
  assert.deepEqual(
    a.responses.map((x) => [x.promptIndex, x.sampleIndex]),
    [
      [0, 0],
      [0, 1],
      [0, 2],
      [1, 0],
      [1, 1],
      [1, 2],
    ],
  );
  assert.equal(
    a.tokens,
    a.responses.reduce((s, x) => s + x.length, 0),
  );
  for (const x of a.responses) {
    assert.equal(x.version, 1);
    assert.equal(x.tokens.length, x.length);
    assert.equal(x.finished, x.tokens[x.length - 1] === EOS_ID);
    assert.ok(x.finished || x.length === cfg.maxResponseLen);
  }
});

test('greedy decoding equals the argmax of the teacher-forced distribution', async () => {
  const s = await engine.sample({ images, prompts, n: 2, seed: 1, temperature: 0 });
  assert.deepEqual(tokensOf(s).slice(0, 2)[0], tokensOf(s)[1], 'greedy ignores the seed stream');
  const ref = referenceForward(
    cfg,
    paramsA,
    s.responses.map((x) => images[x.promptIndex]),
    s.responses.map((x) => prompts[x.promptIndex]),
    tokensOf(s),
  );
  s.responses.forEach((x, i) => {
    for (let t = 0; t < x.length; t++) {
      const dist = ref.logDist[i][t];
      let best = -1;
      for (let j = 0; j < dist.length; j++) if (j !== 0 && j !== 2 && (best < 0 || dist[j] > dist[best])) best = j;
      assert.equal(x.tokens[t], best, `response ${i} token ${t}`);
      assert.ok(Math.abs(x.logprobs[t] - dist[best]) < 2e-5);
    }
  });
});

test('teacher-forced log-probs match sampling log-probs, and masking the image changes them', async () => {
  const s = await engine.sample({ images, prompts, n: 2, seed: 5 });
  const rows = {
    images: s.responses.map((x) => images[x.promptIndex]),
    prompts: s.responses.map((x) => prompts[x.promptIndex]),
    responses: s.responses.map((x) => x.tokens),
  };
  const lp = await engine.logProbs({ ...rows, withEntropy: true });
  assert.equal(lp.version, 1);
  assert.equal(lp.entropy!.length, s.responses.length);
  s.responses.forEach((x, i) => {
    assert.equal(lp.logprobs[i].length, x.length);
    for (let t = 0; t < x.length; t++) assert.ok(Math.abs(lp.logprobs[i][t] - x.logprobs[t]) < 2e-5);
  });
  const blank = makeImage(cfg.imageHeight, cfg.imageWidth);
  const masked = await engine.logProbs({ ...rows, images: rows.images.map(() => blank) });
  const diff = Math.max(...masked.logprobs.flatMap((row, i) => Array.from(row, (v, t) => Math.abs(v - lp.logprobs[i][t]))));
  assert.ok(diff > 1e-3, `masked-image log-probs should differ, max diff ${diff}`);
  assert.equal(masked.entropy, undefined);
});

test('a weight update changes the version and the outputs; a call in flight keeps its weights', async () => {
  const req = { images, prompts, n: 4, seed: 7, temperature: 1 };
  const before = await engine.sample(req);
  const lpReq = {
    images,
    prompts,
    responses: [
      [30, 31, EOS_ID],
      [40, EOS_ID],
    ],
  };
  const lpBefore = await engine.logProbs(lpReq);
  // Issue a call, then an update before it can finish: the call still sees version 1 in full.
  const inFlight = engine.sample(req);
  const update = engine.setWeights(paramsB, 2);
  const lpAfter = engine.logProbs(lpReq);
  const [during, , after2] = await Promise.all([inFlight, update, lpAfter]);
  assert.equal(during.version, 1);
  assert.deepEqual(tokensOf(during), tokensOf(before));
  assert.equal(after2.version, 2);
  assert.equal(engine.version, 2);
  assert.notDeepEqual(
    after2.logprobs.map((x) => Array.from(x)),
    lpBefore.logprobs.map((x) => Array.from(x)),
  );
  const now = await engine.sample(req);
  assert.equal(now.version, 2);
  assert.ok(now.responses.every((x) => x.version === 2));
  assert.notDeepEqual(tokensOf(now), tokensOf(before));
  await engine.setWeights(paramsA, 3);
  const back = await engine.sample(req);
  assert.deepEqual(tokensOf(back), tokensOf(before));
  assert.equal(back.version, 3);
});

test('bad requests reject with a message naming the problem; the engine keeps working', async () => {
  await assert.rejects(engine.sample({ images, prompts: [[2, 10]], seed: 1 }), /1 prompts need 1 images, got 2/);
  await assert.rejects(engine.sample({ images, prompts, seed: 1, maxNewTokens: 99 }), /maxNewTokens/);
  await assert.rejects(engine.sample({ images, prompts: [[10, 11], [2]], seed: 1 }), /prompt 0: must start with BOS/);
  await assert.rejects(engine.logProbs({ images, prompts, responses: [[1]] }), /2 prompts need 2 responses/);
  await assert.rejects(engine.setWeights({ ...paramsA, tok_emb: new Float32Array(3) }, 9), /tok_emb/);
  const ok = await engine.sample({ images, prompts, seed: 1, maxNewTokens: 2 });
  assert.ok(ok.responses.every((x) => x.length <= 2));
});

test('close waits for calls in progress, and later calls reject', async () => {
  const e = await PolicyEngine.create(cfg, { intraOpThreads: 1 });
  await e.setWeights(paramsA, 4);
  const running = e.sample({ images, prompts, n: 4, seed: 2 });
  await e.close();
  const r = await running;
  assert.equal(r.version, 4);
  assert.equal(r.responses.length, 8);
  await assert.rejects(e.sample({ images, prompts, seed: 1 }), /closed/);
});

test('an engine without weights rejects, and a crashed worker is reported instead of hanging', async () => {
  const e = await PolicyEngine.create(cfg, { intraOpThreads: 1 });
  await assert.rejects(e.sample({ images, prompts, seed: 1 }), /no weights yet/);
  await e.setWeights(paramsA, 1);
  const pending = e.sample({ images, prompts, n: 8, seed: 1 });
  // Simulate a crash of the worker thread while the call is pending.
  await (e as unknown as { clients: { worker: { terminate(): Promise<number> } }[] }).clients[0].worker.terminate();
  await assert.rejects(pending, /worker exited unexpectedly/);
  await assert.rejects(e.logProbs({ images, prompts, responses: [[1], [1]] }), /worker exited unexpectedly/);
  await e.close();
});

test('reference weights sit beside the latest: weights "reference" scores with them, "latest" with the current policy', async () => {
  const e = await PolicyEngine.create(cfg, { intraOpThreads: 1 });
  try {
    await e.setWeights(paramsA, 1);
    const lpReq = {
      images,
      prompts,
      responses: [
        [30, 31, EOS_ID],
        [40, EOS_ID],
      ],
    };
    await assert.rejects(e.logProbs({ ...lpReq, weights: 'reference' }), /no reference weights were set/);
    await e.setReferenceWeights(paramsB);
    const ref = await e.logProbs({ ...lpReq, weights: 'reference' });
    const latest = await e.logProbs({ ...lpReq, weights: 'latest' });
    const dflt = await e.logProbs(lpReq);
    assert.equal(ref.version, 0, 'the reference defaults to version 0');
    assert.equal(latest.version, 1);
    assert.deepEqual(dflt.logprobs, latest.logprobs, "no weights field means 'latest'");
    // The reference is paramsB: installing B as the policy must give the same numbers; A differs.
    await e.setWeights(paramsB, 2);
    const b = await e.logProbs(lpReq);
    assert.equal(b.version, 2);
    assert.deepEqual(ref.logprobs, b.logprobs);
    assert.notDeepEqual(ref.logprobs, latest.logprobs);
    // Installing policy weights leaves the reference alone.
    await e.setWeights(paramsA, 3);
    assert.deepEqual((await e.logProbs({ ...lpReq, weights: 'reference' })).logprobs, ref.logprobs);
    assert.equal(e.version, 3);
  } finally {
    await e.close();
  }
});

test('with retainVersions 2, log-probs can be pinned to the two latest versions; an older one rejects naming the held ones', async () => {
  const e = await PolicyEngine.create(cfg, { intraOpThreads: 1, retainVersions: 2 });
  try {
    const lpReq = {
      images,
      prompts,
      responses: [
        [30, 31, EOS_ID],
        [40, EOS_ID],
      ],
    };
    await e.setWeights(paramsA, 1);
    const v1 = await e.logProbs(lpReq);
    await e.setWeights(paramsB, 2);
    const v2 = await e.logProbs(lpReq);
    await e.setWeights(paramsA, 3);
    const pinned2 = await e.logProbs({ ...lpReq, weights: 2 });
    assert.equal(pinned2.version, 2);
    assert.deepEqual(pinned2.logprobs, v2.logprobs);
    const pinned3 = await e.logProbs({ ...lpReq, weights: 3, withEntropy: true });
    assert.equal(pinned3.version, 3);
    assert.deepEqual(pinned3.logprobs, v1.logprobs, 'version 3 holds paramsA again');
    assert.equal(pinned3.entropy!.length, 2);
    assert.equal((await e.logProbs(lpReq)).version, 3);
    await assert.rejects(e.logProbs({ ...lpReq, weights: 1 }), /policy version 1 is no longer held \(held: 2, 3; raise retainVersions\)/);
    // A rejected call does not break the engine.
    assert.equal((await e.logProbs({ ...lpReq, weights: 2 })).version, 2);
  } finally {
    await e.close();
  }
});

test('getWeights gives back a held version bit for bit, as a copy; a version no longer held rejects naming it', async () => {
  const e = await PolicyEngine.create(cfg, { intraOpThreads: 1, retainVersions: 2 });
  try {
    await e.setWeights(paramsA, 1);
    await e.setWeights(paramsB, 2);
    const back = await e.getWeights(1);
    assert.deepEqual(Object.keys(back).sort(), Object.keys(paramsA).sort());
    for (const [name, data] of Object.entries(paramsA)) assert.deepEqual(back[name], data, name);
    back[Object.keys(back)[0]].fill(0); // the engine's own copy is untouched
    for (const [name, data] of Object.entries(paramsA)) assert.deepEqual((await e.getWeights(1))[name], data, name);
    for (const [name, data] of Object.entries(paramsB)) assert.deepEqual((await e.getWeights(2))[name], data, name);
    await e.setWeights(paramsA, 3);
    await assert.rejects(e.getWeights(1), /getWeights: policy version 1 is no longer held \(held: 2, 3; raise retainVersions\)/);
  } finally {
    await e.close();
  }
});

test('an engine option retainVersions below 1 fails at start-up', async () => {
  await assert.rejects(PolicyEngine.create(cfg, { intraOpThreads: 1, retainVersions: 0 }), /retainVersions must be a positive integer, got 0/);
});
