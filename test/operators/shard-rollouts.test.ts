/**
 * The sharded rollout segment: a round cut into shards of any size, computed shard by shard and joined back,
 * equals the round computed whole (the fake engine, like the real one, draws per prompt from its place in
 * the round); the joined batch names bad parts; a shard's job and result survive the wire, and a malformed
 * or hostile result is refused with the worker and the job named.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lastValueFrom, of } from 'rxjs';
import { compositeReward } from '../../tasks/rewards/composite.ts';
import { localShards, rolloutSegment, shardRollouts, splitShards, joinShards, type RolloutSegmentOptions } from '../../operators/index.ts';
import { decodeJob, decodeResult, encodeJob, encodeResult, type ShardId } from '../../operators/shard-messages.ts';
import { encodeMessage } from '../../storage/message-codec.ts';
import { FakeEngine, makeRecords, promptBatch } from './fakes.ts';

const segment: RolloutSegmentOptions = { sample: { n: 3, temperature: 1 }, reward: {}, mask: { ratio: 0.5, patchSize: 1 }, reference: true };
const batch = () => promptBatch({ step: 2, records: makeRecords(7, { height: 4, width: 4 }), seed: 11 });
const withoutTiming = ({ timing: _t, ...rest }: { timing: unknown }) => rest;

test('splitShards cuts a round into shards of the given size, each knowing its place in the round', () => {
  const shards = splitShards(batch(), 3);
  assert.deepEqual(
    shards.map((s) => [s.promptOffset, s.records.map((r) => r.id), [...s.indices]]),
    [
      [0, ['fake/0', 'fake/1', 'fake/2'], [0, 1, 2]],
      [3, ['fake/3', 'fake/4', 'fake/5'], [3, 4, 5]],
      [6, ['fake/6'], [6]],
    ],
  );
  assert.ok(shards.every((s) => s.step === 2 && s.seed === 11));
  assert.throws(() => splitShards(batch(), 0), /shard size must be a positive integer/);
});

test('a round computed in shards of 1, 2, 3 or 7 prompts equals the round computed whole, field by field', async () => {
  const engine = new FakeEngine();
  const whole = await lastValueFrom(of(batch()).pipe(rolloutSegment(engine, compositeReward(), segment)));
  for (const size of [1, 2, 3, 7]) {
    const sharded = await lastValueFrom(of(batch()).pipe(shardRollouts(localShards(rolloutSegment(engine, compositeReward(), segment)), { shardSize: size })));
    assert.deepEqual(withoutTiming(sharded), withoutTiming(whole), `shard size ${size}`);
    assert.equal(sharded.promptOffset, undefined);
  }
});

test("joinShards refuses results that do not carry their shard's prompts", async () => {
  const engine = new FakeEngine();
  const shards = splitShards(batch(), 4);
  const parts = await localShards(rolloutSegment(engine, compositeReward(), segment))(shards);
  assert.throws(() => joinShards(batch(), shards, [parts[1], parts[0]]), /the result of shard 0 does not carry that shard's prompts/);
  assert.throws(() => joinShards(batch(), shards, [parts[0]]), /1 results for 2 shards/);
});

const id: ShardId = { run: 'r1', launch: 'l1', step: 2, round: 1, shard: 1 };
const limits = { maxNewTokens: 16, vocabSize: 128, version: 0 };

test('a job and its result survive the wire: the decoded result equals the shard computed here', async () => {
  const engine = new FakeEngine();
  const [, shard] = splitShards(batch(), 4);
  const job = decodeJob(
    encodeJob({ ...id, version: 0, segment, reward: 'composite', rewardId: 'builtin:composite', policy: engine.config, batch: shard }),
    'papo.job.r1.2.1.1',
  );
  assert.deepEqual(job.batch.records, shard.records);
  assert.deepEqual([job.batch.promptOffset, job.batch.seed, job.reward, job.rewardId, job.segment], [4, 11, 'composite', 'builtin:composite', segment]);
  assert.equal(job.threads, undefined);
  const withThreads = { ...id, version: 0, segment, reward: 'composite', rewardId: 'builtin:composite', policy: engine.config, batch: shard };
  assert.equal(decodeJob(encodeJob({ ...withThreads, threads: 3 }), 'papo.job.r1.2.1.1').threads, 3, "the trainer's engine threads travel with the job");
  assert.throws(
    () => decodeJob(encodeJob({ ...withThreads, threads: 0.5 }), 'papo.job.r1.2.1.1'),
    /shard job papo.job.r1.2.1.1: threads 0.5 is not an integer from 1 to 1024/,
  );
  const layout = decodeJob(encodeJob({ ...withThreads, threads: 2, dataParallelSize: 2 }), 'papo.job.r1.2.1.1');
  assert.deepEqual([layout.threads, layout.dataParallelSize, job.dataParallelSize], [2, 2, undefined], 'and the workers they are shared by');
  assert.throws(
    () => decodeJob(encodeJob({ ...withThreads, dataParallelSize: 0 }), 'papo.job.r1.2.1.1'),
    /shard job papo.job.r1.2.1.1: dataParallelSize 0 is not an integer from 1 to 1024/,
  );
  const computed = await lastValueFrom(of(job.batch).pipe(rolloutSegment(engine, compositeReward(), job.segment)));
  const back = decodeResult(shard, id, encodeResult(id, 'w1', { shard: computed }), 'papo.result.r1.2.1.1', limits);
  const here = await lastValueFrom(of(shard).pipe(rolloutSegment(engine, compositeReward(), segment)));
  assert.deepEqual(withoutTiming(back), withoutTiming(here));
});

test('a malformed job or a hostile result is an error naming the worker and the job, never a batch', async () => {
  const engine = new FakeEngine();
  const [shard] = splitShards(batch(), 2);
  assert.throws(() => decodeJob(new Uint8Array([1, 2, 3]), 'papo.job.x'), /shard job papo.job.x: malformed message .*preamble/);
  assert.throws(() => decodeJob(encodeMessage({ kind: 'job', run: 'a.b' }), 'papo.job.y'), /shard job papo.job.y: run is not an identifier/);
  const good = await lastValueFrom(of(shard).pipe(rolloutSegment(engine, compositeReward(), segment)));
  const decode = (s: typeof good) => decodeResult(shard, id, encodeResult(id, 'w7', { shard: s }), 'papo.result.r1.2.1.1', limits);
  const rewards = good.rewards.slice();
  rewards[1] = Number.NaN;
  assert.throws(() => decode({ ...good, rewards }), /the result of job r1.2.1.1 \(launch l1\) from worker w7: rewards holds a non-finite number/);
  assert.throws(() => decode({ ...good, accuracy: good.accuracy.slice(1) }), /accuracy has 5 values, expected 6/);
  const long = [Int32Array.from({ length: 17 }, () => 5), ...good.responses.slice(1)];
  const longLp = [new Float32Array(17).fill(-1), ...good.oldLogprobs.slice(1)];
  assert.throws(() => decode({ ...good, responses: long, oldLogprobs: longLp }), /response 0 has 17 tokens, over max_response_length 16/);
  assert.throws(
    () => decode({ ...good, responses: [Int32Array.of(999), ...good.responses.slice(1)] }),
    /token id 999, outside the vocabulary|oldLogprobs of response 0 has/,
  );
  const lp = good.oldLogprobs.map((r) => r.slice());
  lp[0][0] = 0.5;
  assert.throws(() => decode({ ...good, oldLogprobs: lp }), /oldLogprobs of response 0 holds a value that is not a finite log-probability/);
  assert.throws(() => decode({ ...good, versions: good.versions.map(() => 3) }), /not sampled with version 0/);
  const refused = encodeResult(id, 'w7', { error: "reward 'mine' is not registered in this worker" });
  assert.throws(
    () => decodeResult(shard, id, refused, 'papo.result.r1.2.1.1', limits),
    /from worker w7: the worker could not run it: reward 'mine' is not registered/,
  );
});
