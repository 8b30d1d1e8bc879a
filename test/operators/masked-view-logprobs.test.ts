import { test } from 'node:test';
import assert from 'node:assert/strict';
import { from } from 'rxjs';
import { maskedImages, maskedViewLogprobs } from '../../operators/masked-view-logprobs.ts';
import { referenceLogprobs } from '../../operators/reference-logprobs.ts';
import { mixSeed } from '../../util/rng.ts';
import type { RgbImage } from '../../util/image.ts';
import { collect, FakeEngine, fakeLogprob, makeRecords, sampledBatch } from './fakes.ts';

const G = 3;
const mask = { ratio: 0.5, patchSize: 2 };
// 8x8 images: a 4x4 grid of 2x2 patches, 16 draws per prompt.
const records = makeRecords(3, { prefix: 'm', height: 8, width: 8 });

/** Every 2x2 patch is either untouched or entirely black; returns how many are black. */
function blackPatches(masked: RgbImage, original: RgbImage): number {
  let black = 0;
  for (let gy = 0; gy < 4; gy++) {
    for (let gx = 0; gx < 4; gx++) {
      const px: number[] = [];
      const orig: number[] = [];
      for (let y = 2 * gy; y < 2 * gy + 2; y++) {
        for (let x = 2 * gx; x < 2 * gx + 2; x++) {
          for (let c = 0; c < 3; c++) {
            px.push(masked.data[(y * 8 + x) * 3 + c]);
            orig.push(original.data[(y * 8 + x) * 3 + c]);
          }
        }
      }
      if (px.every((v) => v === 0)) black++;
      else assert.deepEqual(px, orig, `patch (${gy}, ${gx}) is partly masked`);
    }
  }
  return black;
}

test('the mask seed is recorded; one mask per prompt, applied by whole patches', async () => {
  const engine = new FakeEngine();
  const batch = sampledBatch({ G, records, seed: 77, timing: { gen: 1 } });
  const [out] = await collect(from([batch]).pipe(maskedViewLogprobs(engine, mask)));
  assert.equal(out.maskSeed, mixSeed(77, 'mask'));
  assert.equal(out.maskedImages.length, records.length);
  assert.deepEqual(
    out.maskedImages,
    maskedImages(
      records.map((r) => r.image),
      out.maskSeed,
      mask,
    ),
    'the masks can be redrawn from the seed',
  );
  const black = out.maskedImages.map((img, p) => blackPatches(img, records[p].image));
  assert.ok(
    black.every((n) => n > 0 && n < 16),
    `black patches per prompt: ${black}`,
  );
  assert.notDeepEqual(out.maskedImages[0].data, out.maskedImages[1].data);
  // The raw images are not modified.
  assert.ok(records.every((r) => r.image.data.every((v) => v > 0)));
  assert.equal(out.timing.gen, 1);
  assert.ok(out.timing.masked_log_prob > 0);
});

test('the same batch seed gives the same masked images; another seed, other masks', async () => {
  const engine = new FakeEngine();
  const run = async (seed: number) => (await collect(from([sampledBatch({ G, records, seed })]).pipe(maskedViewLogprobs(engine, mask))))[0];
  const a = await run(5);
  const b = await run(5);
  const c = await run(6);
  assert.deepEqual(b.maskedImages, a.maskedImages);
  assert.deepEqual(b.maskedLogprobs, a.maskedLogprobs);
  assert.notDeepEqual(c.maskedImages, a.maskedImages);
});

test("each prompt's mask is shared by its G responses: the engine gets prompt p's masked image for rows p*G..p*G+G-1", async () => {
  const engine = new FakeEngine();
  const batch = sampledBatch({ G, records });
  const [out] = await collect(from([batch]).pipe(maskedViewLogprobs(engine, mask)));
  assert.equal(engine.logProbRequests.length, 1);
  const req = engine.logProbRequests[0];
  assert.equal(req.images.length, records.length * G);
  req.images.forEach((img, i) => assert.equal(img, out.maskedImages[Math.floor(i / G)], `row ${i}`));
  assert.deepEqual(req.prompts, ['What is 0?', 'What is 0?', 'What is 0?', 'What is 1?', 'What is 1?', 'What is 1?', 'What is 2?', 'What is 2?', 'What is 2?']);
  assert.deepEqual(req.responses, batch.responses);
  assert.equal(req.weights, 0);
  // The log-probs are the engine's for each row's masked image and response.
  out.maskedLogprobs.forEach((lp, i) => {
    const expected = Float32Array.from(batch.responses[i], (_, k) => fakeLogprob(out.maskedImages[Math.floor(i / G)], batch.responses[i], k, 0));
    assert.deepEqual(lp, expected, `row ${i}`);
  });
});

test('log-probs are requested under the version that sampled each response, one call per version', async () => {
  const engine = new FakeEngine({ version: 9 });
  const versions = [4, 4, 5, 5, 4, 6, 6, 6, 4];
  const batch = sampledBatch({ G, records, versions });
  const [out] = await collect(from([batch]).pipe(maskedViewLogprobs(engine, mask)));
  assert.deepEqual(
    engine.logProbRequests.map((r) => r.weights),
    [4, 5, 6],
  );
  const rowsOf = (v: number) => versions.flatMap((x, i) => (x === v ? [i] : []));
  engine.logProbRequests.forEach((req) => {
    const rows = rowsOf(req.weights as number);
    assert.deepEqual(
      req.responses,
      rows.map((i) => batch.responses[i]),
    );
    assert.deepEqual(
      req.images,
      rows.map((i) => out.maskedImages[Math.floor(i / G)]),
    );
  });
  // Results land back on their rows, each computed under its own version.
  out.maskedLogprobs.forEach((lp, i) => {
    const expected = Float32Array.from(batch.responses[i], (_, k) => fakeLogprob(out.maskedImages[Math.floor(i / G)], batch.responses[i], k, versions[i]));
    assert.deepEqual(lp, expected, `row ${i}`);
  });
});

test("referenceLogprobs: one call with weights 'reference' on the raw images, whatever the versions", async () => {
  const engine = new FakeEngine();
  const versions = [1, 1, 2, 2, 2, 3, 1, 1, 1];
  const batch = sampledBatch({ G, records, versions, timing: { gen: 2 } });
  const [out] = await collect(from([batch]).pipe(referenceLogprobs(engine)));
  assert.equal(engine.logProbRequests.length, 1);
  const req = engine.logProbRequests[0];
  assert.equal(req.weights, 'reference');
  req.images.forEach((img, i) => assert.equal(img, records[Math.floor(i / G)].image));
  assert.deepEqual(req.responses, batch.responses);
  out.refLogprobs.forEach((lp, i) => {
    const expected = Float32Array.from(batch.responses[i], (_, k) => fakeLogprob(records[Math.floor(i / G)].image, batch.responses[i], k, 'reference'));
    assert.deepEqual(lp, expected, `row ${i}`);
  });
  assert.equal(out.timing.gen, 2);
  assert.ok(out.timing.ref > 0);
});

test('both stages pass batches through in order', async () => {
  const engine = new FakeEngine({ delayMs: 1 });
  const batches = [1, 2, 3].map((step) => sampledBatch({ step, G, records, seed: step, versions: [0, 0, 0, 1, 1, 1, 0, 0, 0] }));
  const out = await collect(from(batches).pipe(maskedViewLogprobs(engine, mask), referenceLogprobs(engine)));
  assert.deepEqual(
    out.map((b) => b.step),
    [1, 2, 3],
  );
  assert.ok(out.every((b) => b.maskedLogprobs.length === 9 && b.refLogprobs.length === 9));
  assert.equal(engine.logProbRequests.length, 3 * 3, 'two versions (masked) + reference, per batch');
});
