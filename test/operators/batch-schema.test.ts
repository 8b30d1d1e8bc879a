/**
 * A field added by a stage of one's own, declared in the batch schema, survives dynamic sampling (rounds
 * concatenated, groups dropped), the staleness guard's selection, the rollout log and replay, aligned with
 * its responses throughout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { concatMap, map, lastValueFrom, toArray } from 'rxjs';
import {
  CreditGate,
  promptBatches,
  sampleGroups,
  scoreRewards,
  keepInformativeGroups,
  groupAdvantages,
  selectGroups,
  concatGroups,
  loggedRollouts,
  type RolloutBatch,
  type ScoredBatch,
} from '../../operators/index.ts';
import { registerBatchField, batchFields } from '../../storage/batch-schema.ts';
import { RolloutLog } from '../../storage/rollout-log.ts';
import { RecordStream } from '../../tasks/stream.ts';
import { defineReward } from '../../tasks/rewards/types.ts';
import { rolloutRecord } from '../../pipelines/train-records.ts';
import { FakeEngine, syntheticTask } from './fakes.ts';

registerBatchField({ name: 'lengthScore', per: 'response', layout: 'value', dtype: 'float32', log: 'length_score' });
registerBatchField({ name: 'tokenMarks', per: 'response', layout: 'tokens', dtype: 'float32', log: 'token_marks' });
registerBatchField({ name: 'promptTag', per: 'prompt', layout: 'value', dtype: 'int32', log: 'prompt_tag' });

type Marked = ScoredBatch & { lengthScore: Float32Array; tokenMarks: Float32Array[]; promptTag: Int32Array };

/** Values that identify their row: a misaligned slice or concatenation shows. */
const scoreOf = (recordId: string, response: Int32Array) => Number(recordId.split('/').at(-1)) * 1000 + response.length * 10 + (response[0] ?? 0) / 100;
const marksOf = (response: Int32Array) => Float32Array.from(response, (t) => t + 0.5);
const tagOf = (recordId: string) => Number(recordId.split('/').at(-1));

/** The stage of one's own: adds the three fields. */
const markStage = map(
  (b: ScoredBatch): Marked => ({
    ...b,
    lengthScore: Float32Array.from(b.responses, (r, i) => scoreOf(b.records[Math.floor(i / b.groupSize)].id, r)),
    tokenMarks: b.responses.map(marksOf),
    promptTag: Int32Array.from(b.records, (r) => tagOf(r.id)),
  }),
);

function assertAligned(b: Marked | RolloutBatch, where: string) {
  const m = b as unknown as Marked;
  const G = b.groupSize;
  assert.equal(m.lengthScore.length, b.responses.length, `${where}: one score per response`);
  b.responses.forEach((r, i) => {
    assert.equal(m.lengthScore[i], Math.fround(scoreOf(b.records[Math.floor(i / G)].id, r)), `${where}: score of response ${i}`);
    assert.deepEqual(m.tokenMarks[i], marksOf(r), `${where}: marks of response ${i}`);
  });
  assert.deepEqual(
    [...m.promptTag],
    b.records.map((r) => tagOf(r.id)),
    `${where}: tags of the prompts`,
  );
}

test('a registered field survives dynamic sampling, the staleness guard, the rollout log and replay', async () => {
  const steps = 8;
  const batchSize = 2;
  const G = 4;
  const task = syntheticTask(1000);
  const gate = new CreditGate({ maxInflight: 2, maxStaleness: 1, maxSteps: steps, sealBeforeNext: true });
  const stream = RecordStream.open(task, { split: 'train', seed: 8 });
  const reward = defineReward('exact', (i) => {
    const accuracy = i.response === `<answer>${i.answer}</answer>` ? 1 : 0;
    return { overall: accuracy, accuracy, format: 1 };
  });
  const trained = await lastValueFrom(
    promptBatches(stream, { batchSize, grants: gate.grants$, seed: 3 }).pipe(
      sampleGroups(new FakeEngine(), { n: G }),
      scoreRewards(reward),
      markStage,
      keepInformativeGroups(
        { enabled: true, minAcc: 0.01, maxAcc: 0.99, maxTries: 6, batchSize },
        (step) => gate.requestRound(step),
        (step) => gate.seal(step),
      ),
      groupAdvantages({ estimator: 'grpo' }),
      concatMap(async (b) => {
        await new Promise<void>((resolve) => setImmediate(resolve));
        gate.complete(b.step);
        return b;
      }),
      toArray(),
    ),
  );
  assert.equal(trained.length, steps);
  assert.ok(
    trained.some((b) => b.rounds > 1),
    'some steps needed extra rounds (concatenated batches)',
  );
  assert.ok(
    trained.some((b) => b.droppedGroups > 0),
    'some groups were dropped (selected batches)',
  );
  for (const b of trained) assertAligned(b, `step ${b.step}`);

  // the staleness guard's selection
  const b0 = trained.find((b) => b.records.length === batchSize)!;
  assertAligned(selectGroups(b0, [1, 0]), 'selected groups');

  // the rollout log and replay
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-batch-schema-'));
  try {
    const log = new RolloutLog(dir);
    for (const b of trained) await log.append(rolloutRecord(b, 0, task));
    const read = await log.read(trained[0].step);
    assert.deepEqual(Object.keys(read.extra ?? {}).sort(), ['lengthScore', 'promptTag', 'tokenMarks']);
    const replayed = await lastValueFrom(
      loggedRollouts(
        log,
        task,
        trained.map((b) => b.step),
      ).pipe(toArray()),
    );
    replayed.forEach((b, k) => {
      assertAligned(b, `replayed step ${b.step}`);
      const m = b as unknown as Marked;
      const o = trained[k] as unknown as Marked;
      assert.deepEqual(m.lengthScore, o.lengthScore);
      assert.deepEqual(m.tokenMarks, o.tokenMarks);
      assert.deepEqual(m.promptTag, o.promptTag);
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('concatenating a batch with a field and one without names the field', () => {
  const task = syntheticTask(10);
  const stream = RecordStream.open(task, { split: 'train', seed: 1 });
  const records = [stream.next().value, stream.next().value];
  const base = {
    step: 1,
    rounds: 1,
    records,
    indices: Int32Array.of(0, 1),
    cursor: stream.cursor(),
    seed: 0,
    timing: {},
    groupSize: 1,
    responses: [Int32Array.of(1), Int32Array.of(2)],
    oldLogprobs: [Float32Array.of(0), Float32Array.of(0)],
    texts: ['a', 'b'],
    finished: Uint8Array.of(1, 1),
    versions: Int32Array.of(0, 0),
    rewards: Float32Array.of(0, 1),
    accuracy: Float32Array.of(0, 1),
    format: Float32Array.of(1, 1),
    rewardFailures: [],
  } as ScoredBatch;
  const marked = { ...base, lengthScore: Float32Array.of(1, 2) } as ScoredBatch;
  assert.throws(() => concatGroups(base, marked), /step 1: field lengthScore is on the second batch only/);
  const both = concatGroups(marked, marked) as ScoredBatch & { lengthScore: Float32Array };
  assert.deepEqual([...both.lengthScore], [1, 2, 1, 2]);
});

test('declarations that clash or cannot be logged are refused; the same declaration twice is accepted', () => {
  assert.throws(() => registerBatchField({ name: 'rewards', per: 'response', layout: 'value', dtype: 'float32' }), /already has a field rewards/);
  assert.throws(() => registerBatchField({ name: 'x1', per: 'response', layout: 'value', dtype: 'float32', log: 'offsets' }), /already has an array offsets/);
  assert.throws(
    () => registerBatchField({ name: 'x2', per: 'response', layout: 'value', dtype: 'float32', log: 'advantages' }),
    /already has an array advantages/,
  );
  assert.throws(() => registerBatchField({ name: 'x3', per: 'response', layout: 'value', dtype: 'float64' as never }), /needs dtype float32, int32 or uint8/);
  assert.throws(() => registerBatchField({ name: 'x4', per: 'prompt', layout: 'tokens', dtype: 'float32' }), /per-token values are per response/);
  assert.throws(() => registerBatchField({ name: 'x5', per: 'response', layout: 'object', log: 'x5' }), /object fields are not logged/);
  const n = batchFields().length;
  registerBatchField({ name: 'lengthScore', per: 'response', layout: 'value', dtype: 'float32', log: 'length_score' });
  assert.equal(batchFields().length, n);
});
