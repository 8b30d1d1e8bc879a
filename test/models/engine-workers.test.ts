/**
 * The engine with several workers (EngineOptions.workers): each call is split into contiguous parts. Log-probs
 * (with and without a shared prefix, views pinned to versions and the reference) equal the one-worker
 * engine's bit for bit; samples draw by their place in the whole request (the same tokens, values within
 * float rounding) and repeat exactly. Errors still name the prompt or row of the whole request; weights read
 * back are the installed ones.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { policyConfig } from '../../models/config.ts';
import { PolicyEngine } from '../../models/engine/engine.ts';
import { engineThreads, evenParts, runParts } from '../../models/engine/parts.ts';
import type { LogProbRequest, SampleResult } from '../../models/engine/types.ts';
import { randomImage, randomParams } from './reference-forward.ts';

const cfg = policyConfig({ imageHeight: 8, imageWidth: 12, patchSize: 4, dModel: 16, nHeads: 2, nLayers: 2, maxPromptLen: 8, maxResponseLen: 6 });
const paramsA = randomParams(cfg, 31);
const paramsB = randomParams(cfg, 32);
const reference = randomParams(cfg, 33);
// Five prompts of different lengths (left padding differs between the parts), one image each.
const prompts = [
  [2, 10, 11, 12],
  [2, 20],
  [2, 30, 31, 32, 33, 34],
  [2, 40, 41],
  [2, 50, 51, 52, 53],
];
const images = prompts.map((_, i) => randomImage(cfg, 40 + i));
let one: PolicyEngine;
let three: PolicyEngine;

before(async () => {
  [one, three] = await Promise.all([
    PolicyEngine.create(cfg, { intraOpThreads: 1, logprobBatchRows: 4 }),
    PolicyEngine.create(cfg, { intraOpThreads: 1, logprobBatchRows: 4, workers: 3 }),
  ]);
  for (const e of [one, three]) {
    await e.setWeights(paramsA, 1);
    await e.setWeights(paramsB, 2);
    await e.setReferenceWeights(reference);
  }
});
after(async () => {
  await Promise.all([one?.close(), three?.close()]);
});

const plain = (s: SampleResult) => ({
  ...s,
  responses: s.responses.map((r) => ({
    ...r,
    tokens: Array.from(r.tokens),
    logprobs: Array.from(r.logprobs),
    samplingLogprobs: Array.from(r.samplingLogprobs),
  })),
});
const rowsOf = (s: SampleResult): LogProbRequest => ({
  images: s.responses.map((r) => images[r.promptIndex]),
  prompts: s.responses.map((r) => prompts[r.promptIndex]),
  responses: s.responses.map((r) => r.tokens),
  withEntropy: true,
});
const lists = (xs: Float32Array[] | undefined) => xs?.map((x) => Array.from(x));

test('parts: even and contiguous; log-prob parts are whole runs', () => {
  assert.deepEqual(evenParts(5, 2), [
    { start: 0, end: 2 },
    { start: 2, end: 5 },
  ]);
  assert.deepEqual(evenParts(1, 3), [{ start: 0, end: 1 }]);
  assert.deepEqual(evenParts(0, 2), [{ start: 0, end: 0 }]);
  assert.deepEqual(runParts(256, 64, 2), [
    { start: 0, end: 128 },
    { start: 128, end: 256 },
  ]);
  assert.deepEqual(runParts(150, 64, 2), [
    { start: 0, end: 64 },
    { start: 64, end: 150 },
  ]);
  assert.deepEqual(runParts(40, 64, 2), [{ start: 0, end: 40 }]);
});

test('samples draw by their place in the whole request: the same tokens as one worker, values within rounding, and repeatable', async () => {
  const close = (a: SampleResult, b: SampleResult) => {
    assert.equal(b.version, a.version);
    assert.equal(b.tokens, a.tokens);
    assert.deepEqual(
      b.responses.map((r) => [r.promptIndex, r.sampleIndex, r.length, r.finished, r.version, Array.from(r.tokens)]),
      a.responses.map((r) => [r.promptIndex, r.sampleIndex, r.length, r.finished, r.version, Array.from(r.tokens)]),
    );
    b.responses.forEach((r, i) =>
      r.logprobs.forEach((x, t) => {
        assert.ok(Math.abs(x - a.responses[i].logprobs[t]) < 1e-5);
        assert.ok(Math.abs(r.samplingLogprobs[t] - a.responses[i].samplingLogprobs[t]) < 1e-5);
      }),
    );
  };
  for (const [seed, promptOffset, n] of [
    [7, 0, 3],
    [8, 5, 2],
    [9, 0, 1],
  ]) {
    const req = { images, prompts, n, seed, temperature: 1, topP: 0.9, promptOffset };
    const [a, b, again] = await Promise.all([one.sample(req), three.sample(req), three.sample(req)]);
    assert.equal(b.version, 2);
    close(a, b);
    assert.deepEqual(plain(again), plain(b));
  }
  // Fewer prompts than workers, and a pinned older version.
  const req = { images: images.slice(0, 2), prompts: prompts.slice(0, 2), n: 2, seed: 3, weights: 1 as const };
  const [a, b] = await Promise.all([one.sample(req), three.sample(req)]);
  assert.equal(b.version, 1);
  close(a, b);
});

test('log-probs, shared prefix, and views equal the one-worker engine bit for bit', async () => {
  const s = await one.sample({ images, prompts, n: 3, seed: 11, temperature: 1 });
  const req = rowsOf(s);
  for (const sharePrefix of [false, true]) {
    const r = { ...req, sharePrefix };
    const [a, b] = await Promise.all([one.logProbs(r), three.logProbs(r)]);
    assert.equal(b.version, a.version);
    assert.deepEqual(lists(b.logprobs), lists(a.logprobs));
    assert.deepEqual(lists(b.entropy), lists(a.entropy));
  }
  const views: LogProbRequest[] = [
    { ...req, images: req.images.map((_, i) => images[(i + 1) % images.length]), weights: 1, sharePrefix: true },
    { ...req, weights: 'reference', sharePrefix: true, withEntropy: false },
    { images: [images[0]], prompts: [prompts[0]], responses: [s.responses[0].tokens] },
  ];
  const [a, b] = await Promise.all([one.logProbViews(views), three.logProbViews(views)]);
  assert.equal(b.length, 3);
  b.forEach((r, q) => {
    assert.equal(r.version, a[q].version);
    assert.deepEqual(lists(r.logprobs), lists(a[q].logprobs));
    assert.deepEqual(lists(r.entropy), lists(a[q].entropy));
  });
  assert.equal(b[1].entropy, undefined);
});

test('errors name the prompt or row of the whole request', async () => {
  const badPrompts = [...prompts.slice(0, 4), [5, 6]];
  await assert.rejects(three.sample({ images, prompts: badPrompts, n: 2, seed: 1 }), /sample \(prompts from 3\): prompt 1: must start with BOS/);
  const s = await one.sample({ images, prompts, n: 2, seed: 1 });
  const req = rowsOf(s);
  const responses = req.responses.map((r, i) => (i === 9 ? Int32Array.from([999]) : r));
  await assert.rejects(three.logProbs({ ...req, responses }), /logProbs \(rows from 8\): response 1 token 0: token id 999 is outside the vocabulary/);
  await assert.rejects(three.logProbViews([req, { ...req, responses }]), /request 1: logProbs \(rows from 8\): response 1 token 0/);
  await assert.rejects(three.logProbs({ ...req, weights: 7 }), /policy version 7 is no longer held/);
  // A malformed request goes whole to one worker, which names what is wrong.
  await assert.rejects(three.logProbs({ ...req, responses: req.responses.slice(1) }), /10 prompts need 10 responses, got 9/);
  await assert.rejects(three.logProbViews([req, { ...req, responses: req.responses.slice(1) }]), /request 1: logProbs: 10 prompts need 10 responses, got 9/);
  await assert.rejects(
    three.logProbViews([req, { images, prompts: 'not a list' } as unknown as LogProbRequest]),
    /request 1: logProbs: 10 prompts need 10 images, got 5/,
  );
});

test('weights read back from a multi-worker engine are the installed ones', async () => {
  const back = await three.getWeights(1);
  for (const [name, data] of Object.entries(paramsA)) assert.deepEqual(Array.from(back[name]), Array.from(data), name);
  assert.equal(three.workers, 3);
});

test('one worker of three crashing rejects the calls it shares, pending and later, instead of hanging', async () => {
  const e = await PolicyEngine.create(cfg, { intraOpThreads: 1, workers: 3 });
  await e.setWeights(paramsA, 1);
  const pending = e.sample({ images, prompts, n: 4, seed: 1 });
  await (e as unknown as { clients: { worker: { terminate(): Promise<number> } }[] }).clients[2].worker.terminate();
  await assert.rejects(pending, /policy engine 3 worker exited unexpectedly/);
  await assert.rejects(e.sample({ images, prompts, n: 4, seed: 1 }), /policy engine 3 worker exited unexpectedly/);
  await e.close().catch(() => undefined);
});

test('engineThreads: at most one worker per thread, the threads shared evenly', () => {
  assert.deepEqual(engineThreads(2, 2), { workers: 2, intraOpThreads: 1 });
  assert.deepEqual(engineThreads(2, 1), { workers: 1, intraOpThreads: 2 });
  assert.deepEqual(engineThreads(1, 2), { workers: 1, intraOpThreads: 1 });
  assert.deepEqual(engineThreads(4, 2), { workers: 2, intraOpThreads: 2 });
  assert.deepEqual(engineThreads(5, 2), { workers: 2, intraOpThreads: 2 });
});
