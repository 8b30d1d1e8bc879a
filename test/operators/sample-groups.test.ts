import { test } from 'node:test';
import assert from 'node:assert/strict';
import { from } from 'rxjs';
import { sampleGroups } from '../../operators/sample-groups.ts';
import { EOS_ID, encode } from '../../models/tokenizer.ts';
import { collect, FakeEngine, makeRecords, promptBatch } from './fakes.ts';

test('one engine request per batch, built from its records, options and seed', async () => {
  const engine = new FakeEngine();
  const records = makeRecords(3);
  const batch = promptBatch({ step: 4, records, seed: 1234 });
  await collect(from([batch]).pipe(sampleGroups(engine, { n: 2, temperature: 0.7, topP: 0.9, topK: 5, maxNewTokens: 12 })));
  assert.equal(engine.sampleRequests.length, 1);
  const req = engine.sampleRequests[0];
  assert.deepEqual(req.prompts, ['What is 0?', 'What is 1?', 'What is 2?']);
  assert.equal(req.images.length, 3);
  req.images.forEach((img, p) => assert.equal(img, records[p].image));
  assert.equal(req.n, 2);
  assert.equal(req.temperature, 0.7);
  assert.equal(req.topP, 0.9);
  assert.equal(req.topK, 5);
  assert.equal(req.maxNewTokens, 12);
  assert.equal(req.seed, 1234);

  await collect(from([batch]).pipe(sampleGroups(engine, { n: 1, seedOf: (b) => b.seed + b.step })));
  assert.equal(engine.sampleRequests[1].seed, 1238);
});

test('responses are prompt-major with tokens, behaviour log-probs, texts, finished flags and versions', async () => {
  const G = 3;
  const engine = new FakeEngine({
    version: 6,
    respond: (_req, p, g) => ({ text: `<answer>${p}${g}</answer>`, finished: g !== 1, version: g === 2 ? 5 : undefined }),
  });
  const records = makeRecords(2);
  const [out] = await collect(from([promptBatch({ step: 2, records, timing: { other: 0.5 } })]).pipe(sampleGroups(engine, { n: G })));
  assert.equal(out.groupSize, G);
  assert.equal(out.responses.length, 2 * G);
  assert.deepEqual(out.texts, [
    '<answer>00</answer>',
    '<answer>01</answer>',
    '<answer>02</answer>',
    '<answer>10</answer>',
    '<answer>11</answer>',
    '<answer>12</answer>',
  ]);
  assert.deepEqual(Array.from(out.finished), [1, 0, 1, 1, 0, 1]);
  assert.deepEqual(Array.from(out.versions), [6, 6, 5, 6, 6, 5]);
  assert.ok(out.versions instanceof Int32Array);
  assert.ok(out.finished instanceof Uint8Array);
  // (p, g) = (1, 0): finished, so EOS ends the tokens; the text stops before it.
  assert.deepEqual(Array.from(out.responses[3]), [...encode('<answer>10</answer>'), EOS_ID]);
  assert.deepEqual(Array.from(out.responses[4]), encode('<answer>11</answer>'));
  // Behaviour log-probs are the engine's, per token: -0.01 (k + 1) - 0.001 g - 0.1 p.
  assert.equal(out.oldLogprobs[5].length, out.responses[5].length);
  assert.ok(Math.abs(out.oldLogprobs[5][0] - (-0.01 - 0.002 - 0.1)) < 1e-6);
  assert.ok(Math.abs(out.oldLogprobs[0][3] - -0.04) < 1e-6);
  // The prompt batch passes through; timing gains `gen` and keeps the rest.
  assert.equal(out.step, 2);
  assert.equal(out.records, records);
  assert.equal(out.timing.other, 0.5);
  assert.ok(out.timing.gen > 0);
});

test('batches are sampled one at a time and come out in order', async () => {
  const engine = new FakeEngine({ delayMs: 2 });
  const batches = [1, 2, 3, 4].map((step) => promptBatch({ step, records: makeRecords(2, { prefix: `s${step}` }), seed: step }));
  const out = await collect(from(batches).pipe(sampleGroups(engine, { n: 2 })));
  assert.deepEqual(
    out.map((b) => b.step),
    [1, 2, 3, 4],
  );
  assert.deepEqual(
    out.map((b) => b.records[0].id),
    ['s1/0', 's2/0', 's3/0', 's4/0'],
  );
  assert.equal(engine.maxActive, 1);
  // The default response text depends on (seed, p, g): `(seed + p + g) % 10`.
  assert.deepEqual(out[2].texts, ['<answer>3</answer>', '<answer>4</answer>', '<answer>4</answer>', '<answer>5</answer>']);
});

test('an empty batch gives empty arrays', async () => {
  const engine = new FakeEngine();
  const [out] = await collect(from([promptBatch({ records: [] })]).pipe(sampleGroups(engine, { n: 4 })));
  assert.equal(out.responses.length, 0);
  assert.equal(out.versions.length, 0);
  assert.equal(out.groupSize, 4);
});
