/**
 * What a shard job and result carry for the scale-out's checks and figures: a job without a reward identity
 * is refused, and a worker's timings come back with its result only when every number is sound.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lastValueFrom, of } from 'rxjs';
import { rolloutSegment, splitShards, type RolloutSegmentOptions } from '../../operators/index.ts';
import { decodeJob, encodeJob, encodeResult, resultId, type ShardDist, type ShardId } from '../../operators/shard-messages.ts';
import { decodeMessage, encodeMessage } from '../../storage/message-codec.ts';
import { compositeReward } from '../../tasks/rewards/composite.ts';
import { FakeEngine, makeRecords, promptBatch } from './fakes.ts';

const segment: RolloutSegmentOptions = { sample: { n: 2, temperature: 1 }, reward: {}, reference: false };
const id: ShardId = { run: 'r1', launch: 'l1', step: 3, round: 1, shard: 0 };

test('a job carries its reward identity; one without it, or with a malformed one, is refused', () => {
  const engine = new FakeEngine();
  const [shard] = splitShards(promptBatch({ step: 3, records: makeRecords(2, { height: 4, width: 4 }) }), 2);
  const job = { ...id, version: 0, segment, reward: 'exact', rewardId: 'sha256:ab12', policy: engine.config, batch: shard };
  assert.equal(decodeJob(encodeJob(job), 'papo.job.r1.3.1.0').rewardId, 'sha256:ab12');
  const { header, arrays } = decodeMessage(encodeJob(job), 'job');
  for (const rewardId of [undefined, 'exact', 'md5:ab', 'sha256:'])
    assert.throws(
      () => decodeJob(encodeMessage({ ...header, rewardId }, Object.fromEntries(arrays)), 'papo.job.r1.3.1.0'),
      /shard job papo\.job\.r1\.3\.1\.0: rewardId is not a reward identity \(builtin:, sha256: or code:\)/,
      String(rewardId),
    );
});

test("a result's timings are read back when sound, and left out when any number is not", async () => {
  const engine = new FakeEngine();
  const [shard] = splitShards(promptBatch({ step: 3, records: makeRecords(2, { height: 4, width: 4 }) }), 2);
  const computed = await lastValueFrom(of(shard).pipe(rolloutSegment(engine, compositeReward(), segment)));
  const dist: ShardDist = { jobStoredMs: 1.7e12, deliveries: 2, busyS: 0.5, weightFetchS: 0.1, weightBytes: 1e6 };
  assert.deepEqual(resultId(encodeResult(id, 'w1', { shard: computed }, dist), 's').dist, dist);
  assert.equal(resultId(encodeResult(id, 'w1', { shard: computed }), 's').dist, undefined);
  for (const bad of [{ busyS: -1 }, { weightBytes: Number.NaN }, { deliveries: '2' }])
    assert.equal(resultId(encodeResult(id, 'w1', { shard: computed }, { ...dist, ...bad } as unknown as ShardDist), 's').dist, undefined, JSON.stringify(bad));
});
