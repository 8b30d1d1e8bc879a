import { test } from 'node:test';
import assert from 'node:assert/strict';
import { from } from 'rxjs';
import { scoreRewards } from '../../operators/score-rewards.ts';
import { defineBatchReward, defineReward, type RewardInput } from '../../tasks/rewards/types.ts';
import { collect, makeRecords, sampledBatch } from './fakes.ts';

const G = 2;
const records = makeRecords(3, { prefix: 'rw' }); // answers 0, 1, 2
// Response (p, g): correct when g is 0.
const texts = ['0', 'x', '1', 'y', '2', 'z'];

/** accuracy: exact match; format: 0.5; overall: accuracy + 0.05. */
const score = (i: RewardInput) => {
  const accuracy = i.response === i.answer ? 1 : 0;
  return { overall: accuracy + 0.05, accuracy, format: 0.5 };
};

test('every response is scored against its own record; rewards, accuracy and format are per response', async () => {
  const inputs: RewardInput[] = [];
  const reward = defineReward('exact', (i) => {
    inputs.push(i);
    return score(i);
  });
  const batch = sampledBatch({ step: 3, G, records, texts, timing: { gen: 0.25 } });
  const [out] = await collect(from([batch]).pipe(scoreRewards(reward)));
  assert.deepEqual(inputs.map((i) => [i.id, i.response, i.answer, i.question, i.family]).sort(), [
    ['rw/0', '0', '0', 'What is 0?', 'read'],
    ['rw/0', 'x', '0', 'What is 0?', 'read'],
    ['rw/1', '1', '1', 'What is 1?', 'read'],
    ['rw/1', 'y', '1', 'What is 1?', 'read'],
    ['rw/2', '2', '2', 'What is 2?', 'read'],
    ['rw/2', 'z', '2', 'What is 2?', 'read'],
  ]);
  assert.deepEqual(inputs.find((i) => i.response === 'y')!.meta, { i: 1 });
  assert.deepEqual(Array.from(out.accuracy), [1, 0, 1, 0, 1, 0]);
  assert.deepEqual(Array.from(out.rewards), Array.from(Float32Array.from([1.05, 0.05, 1.05, 0.05, 1.05, 0.05])));
  assert.deepEqual(Array.from(out.format), [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]);
  assert.deepEqual(out.rewardFailures, []);
  assert.equal(out.timing.gen, 0.25);
  assert.ok(out.timing.reward > 0);
  assert.equal(out.step, 3);
  assert.equal(out.texts, batch.texts);
});

test('a reward that throws for some records: reward 0 there, failures with record ids, no error in the stream', async () => {
  const reward = defineReward('flaky', (i) => {
    if (i.id === 'rw/1') throw new Error(`cannot score ${i.response}`);
    return score(i);
  });
  const batches = [1, 2].map((step) => sampledBatch({ step, G, records, texts }));
  const out = await collect(from(batches).pipe(scoreRewards(reward, { concurrency: 2 })));
  assert.equal(out.length, 2, 'both batches pass');
  for (const b of out) {
    assert.deepEqual(Array.from(b.accuracy), [1, 0, 0, 0, 1, 0]);
    assert.deepEqual(Array.from(b.rewards), Array.from(Float32Array.from([1.05, 0.05, 0, 0, 1.05, 0.05])));
    assert.deepEqual(
      b.rewardFailures.map((f) => [f.id, f.index, f.reward, f.kind]),
      [
        ['rw/1', 2, 'flaky', 'threw'],
        ['rw/1', 3, 'flaky', 'threw'],
      ],
    );
    assert.match(b.rewardFailures[0].reason, /cannot score 1/);
    assert.match(b.rewardFailures[1].reason, /cannot score y/);
  }
});

test('invalid values and timeouts are failures too', async () => {
  const reward = defineReward('odd', async (i) => {
    if (i.response === 'x') return { overall: Number.NaN, accuracy: 0, format: 0 };
    if (i.response === 'z') return new Promise<never>(() => {}); // never settles
    return score(i);
  });
  const [out] = await collect(from([sampledBatch({ G, records, texts })]).pipe(scoreRewards(reward, { timeoutMs: 30 })));
  assert.deepEqual(
    out.rewardFailures.map((f) => [f.id, f.index, f.kind]),
    [
      ['rw/0', 1, 'invalid'],
      ['rw/2', 5, 'timeout'],
    ],
  );
  assert.equal(out.rewards[1], 0);
  assert.equal(out.rewards[5], 0);
  assert.equal(out.accuracy[4], 1);
});

test('a batch reward function gets all responses in prompt-major order', async () => {
  let calls = 0;
  const reward = defineBatchReward('batched', (inputs) => {
    calls++;
    return inputs.map((i, k) => ({ overall: k, accuracy: i.response === i.answer ? 1 : 0, format: 1 }));
  });
  const [out] = await collect(from([sampledBatch({ G, records, texts })]).pipe(scoreRewards(reward)));
  assert.equal(calls, 1);
  assert.deepEqual(Array.from(out.rewards), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(Array.from(out.accuracy), [1, 0, 1, 0, 1, 0]);
});

test('a batch reward function that throws fails every response of the batch', async () => {
  const reward = defineBatchReward('broken', () => {
    throw new Error('judge offline');
  });
  const [out] = await collect(from([sampledBatch({ G, records, texts })]).pipe(scoreRewards(reward)));
  assert.deepEqual(Array.from(out.rewards), [0, 0, 0, 0, 0, 0]);
  assert.deepEqual(
    out.rewardFailures.map((f) => f.id),
    ['rw/0', 'rw/0', 'rw/1', 'rw/1', 'rw/2', 'rw/2'],
  );
});
