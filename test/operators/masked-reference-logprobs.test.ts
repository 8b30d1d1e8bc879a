import { test } from 'node:test';
import assert from 'node:assert/strict';
import { from, lastValueFrom } from 'rxjs';
import { maskedReferenceLogprobs } from '../../operators/masked-reference-logprobs.ts';
import { maskedViewLogprobs } from '../../operators/masked-view-logprobs.ts';
import { referenceLogprobs } from '../../operators/reference-logprobs.ts';
import { viewLogprobs } from '../../operators/view-logprobs.ts';
import type { LogProbRequest, LogProbResult } from '../../models/engine/types.ts';
import { FakeEngine, makeRecords, sampledBatch } from './fakes.ts';
import { rejectionOf } from '../asserts.ts';

const opts = { ratio: 0.5, patchSize: 1 };
// Two sampling versions in one batch: the masked view takes one request per version.
const batch = () => sampledBatch({ step: 4, G: 2, records: makeRecords(3, { prefix: 'x' }), versions: [1, 1, 2, 2, 1, 2], timing: { gen: 1 } });

/** A fake engine with logProbViews that records its calls. */
class ViewsEngine extends FakeEngine {
  readonly viewCalls: LogProbRequest[][] = [];
  async logProbViews(requests: readonly LogProbRequest[]): Promise<LogProbResult[]> {
    this.viewCalls.push([...requests]);
    const out: LogProbResult[] = [];
    for (const r of requests) out.push(await this.logProbs(r));
    return out;
  }
}

test('fused: the masked view and the reference of the two stages in one call, the same values; its time split in halves', async () => {
  const fused = new ViewsEngine({ version: 2 });
  const apart = new FakeEngine({ version: 2 });
  const f = await lastValueFrom(from([batch()]).pipe(maskedReferenceLogprobs(fused, { ...opts, sharePrefix: true })));
  const a = await lastValueFrom(
    from([batch()]).pipe(maskedViewLogprobs(apart, { ...opts, sharePrefix: true }), referenceLogprobs(apart, { sharePrefix: true })),
  );
  assert.deepEqual([f.maskedLogprobs, f.refLogprobs, f.maskSeed, f.maskedImages], [a.maskedLogprobs, a.refLogprobs, a.maskSeed, a.maskedImages]);
  assert.equal(fused.viewCalls.length, 1);
  assert.deepEqual(
    fused.viewCalls[0].map((r) => [r.weights, r.sharePrefix, r.responses.length]),
    [
      [1, true, 3],
      [2, true, 3],
      ['reference', true, 6],
    ],
  );
  assert.deepEqual(fused.viewCalls[0], apart.logProbRequests);
  assert.equal(f.timing.gen, 1);
  assert.equal(f.timing.masked_log_prob, f.timing.ref);
  assert.ok(f.timing.masked_log_prob >= 0);
});

test('viewLogprobs: fused only with both views; an engine without logProbViews gets the requests one by one', async () => {
  const plain = new FakeEngine({ version: 2 });
  const out = await lastValueFrom(from([batch()]).pipe(viewLogprobs(plain, { mask: opts, reference: true, fused: true })));
  assert.ok(out.maskedLogprobs && out.refLogprobs);
  assert.equal(plain.logProbRequests.length, 3);
  assert.ok(plain.logProbRequests.every((r) => r.sharePrefix === undefined));
  const views = new ViewsEngine({ version: 2 });
  const maskOnly = await lastValueFrom(from([batch()]).pipe(viewLogprobs(views, { mask: opts, reference: false, fused: true })));
  assert.equal(views.viewCalls.length, 0);
  assert.ok(maskOnly.maskedLogprobs && !maskOnly.refLogprobs);
});

test('a failing fused call names the stage and the batch', async () => {
  const engine = new ViewsEngine({ logProbsError: new Error('version 1 is no longer retained') });
  const err = await rejectionOf(lastValueFrom(from([batch()]).pipe(maskedReferenceLogprobs(engine, opts))));
  assert.equal(err.message, 'maskedReferenceLogprobs: step 4 (records x/0 .. x/2): version 1 is no longer retained');
});
