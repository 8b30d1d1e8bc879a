import { test } from 'node:test';
import assert from 'node:assert/strict';
import { from, lastValueFrom, tap, toArray } from 'rxjs';
import { initTf } from '../../util/tf-backend.ts';
import { sampleGroups } from '../../operators/sample-groups.ts';
import { scoreRewards } from '../../operators/score-rewards.ts';
import { maskedViewLogprobs } from '../../operators/masked-view-logprobs.ts';
import { referenceLogprobs } from '../../operators/reference-logprobs.ts';
import { groupAdvantages } from '../../operators/group-advantages.ts';
import { describeBatch, stageError } from '../../operators/types.ts';
import { defineReward } from '../../tasks/rewards/types.ts';
import { FakeEngine, makeRecords, promptBatch, sampledBatch, scoredBatch } from './fakes.ts';
import { rejectionOf } from '../asserts.ts';

await initTf();

test('a rejecting engine.sample errors the stream with the stage name, step and record ids', async () => {
  const cause = new Error('worker crashed');
  const engine = new FakeEngine({ sampleError: cause });
  const batches = [
    promptBatch({ step: 3, records: makeRecords(4, { prefix: 'digits/train' }) }),
    promptBatch({ step: 4, records: makeRecords(2, { prefix: 'later' }) }),
  ];
  const passed: number[] = [];
  const err = await rejectionOf(
    lastValueFrom(
      from(batches).pipe(
        sampleGroups(engine, { n: 2 }),
        tap((b) => passed.push(b.step)),
        toArray(),
      ),
    ),
  );
  assert.equal(err.message, 'sampleGroups: step 3 (records digits/train/0 .. digits/train/3): worker crashed');
  assert.equal((err as Error & { cause?: unknown }).cause, cause);
  assert.deepEqual(passed, []);
  assert.equal(engine.sampleRequests.length, 1, 'the stream stops at the failing batch');
});

test('log-prob stages name themselves and the batch', async () => {
  const engine = new FakeEngine({ logProbsError: new Error('version 3 is no longer retained') });
  const batch = sampledBatch({ step: 7, G: 2, records: makeRecords(3, { prefix: 'x' }) });
  const masked = await rejectionOf(lastValueFrom(from([batch]).pipe(maskedViewLogprobs(engine, { ratio: 0.5, patchSize: 1 }))));
  assert.equal(masked.message, 'maskedViewLogprobs: step 7 (records x/0 .. x/2): version 3 is no longer retained');
  const ref = await rejectionOf(lastValueFrom(from([batch]).pipe(referenceLogprobs(engine))));
  assert.equal(ref.message, 'referenceLogprobs: step 7 (records x/0 .. x/2): version 3 is no longer retained');
});

test('scoreRewards and groupAdvantages errors name the stage and the batch', async () => {
  const reward = defineReward('r', () => ({ overall: 1, accuracy: 1, format: 1 }));
  const bad = await rejectionOf(
    lastValueFrom(from([sampledBatch({ step: 2, G: 1, records: makeRecords(1, { prefix: 'y' }) })]).pipe(scoreRewards(reward, { timeoutMs: -1 }))),
  );
  assert.match(bad.message, /^scoreRewards: step 2 \(records y\/0 \.\. y\/0\): reward timeoutMs must be a finite number of milliseconds above 0/);
  // Rewards that do not split into groups of G.
  const batch = { ...scoredBatch({ step: 5, G: 2, accuracy: [1, 0, 1, 0], prefix: 'z' }), groupSize: 3 };
  const adv = await rejectionOf(lastValueFrom(from([batch]).pipe(groupAdvantages({ estimator: 'grpo' }))));
  assert.equal(adv.message, 'groupAdvantages: step 5 (records z/0 .. z/1): 4 rewards do not split into groups of 3');
});

test('describeBatch and stageError', () => {
  assert.equal(describeBatch({ step: 1, records: [] }), 'step 1 (no records)');
  assert.equal(describeBatch({ step: 2, records: makeRecords(1, { prefix: 'a' }) }), 'step 2 (records a/0 .. a/0)');
  const e = stageError('s', { step: 3, records: makeRecords(2, { prefix: 'b' }) }, 'plain string');
  assert.equal(e.message, 's: step 3 (records b/0 .. b/1): plain string');
  assert.equal((e as Error & { cause?: unknown }).cause, 'plain string');
});
