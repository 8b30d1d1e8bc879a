import { test } from 'node:test';
import assert from 'node:assert/strict';
import { concatMap, from, Subject, tap } from 'rxjs';
import { CreditGate, type Grant } from '../../operators/credit-gate.ts';
import { keepInformativeGroups, type KeepInformativeOptions } from '../../operators/keep-informative-groups.ts';
import { promptBatches } from '../../operators/prompt-batches.ts';
import { sampleGroups } from '../../operators/sample-groups.ts';
import { scoreRewards } from '../../operators/score-rewards.ts';
import { groupMeans } from '../../operators/groups.ts';
import type { FilteredGroups, ScoredBatch } from '../../operators/types.ts';
import { RecordStream } from '../../tasks/stream.ts';
import { defineReward } from '../../tasks/rewards/types.ts';
import { collect, FakeEngine, scoredBatch, syntheticTask } from './fakes.ts';

const G = 2;
const opts = (o: Partial<KeepInformativeOptions> = {}): KeepInformativeOptions => ({
  enabled: true,
  minAcc: 0.01,
  maxAcc: 0.99,
  maxTries: 5,
  batchSize: 3,
  ...o,
});

/** The stage driven by hand: `push` a round, read `out` and the rounds it asked for. */
function drive(o: KeepInformativeOptions, onRequest?: (step: number) => void) {
  const source = new Subject<ScoredBatch>();
  const out: (ScoredBatch & FilteredGroups)[] = [];
  const requested: number[] = [];
  let error: unknown;
  source
    .pipe(
      keepInformativeGroups(o, (step) => {
        requested.push(step);
        onRequest?.(step);
      }),
    )
    .subscribe({ next: (b) => out.push(b), error: (e) => (error = e) });
  return {
    push: (b: ScoredBatch) => source.next(b),
    complete: () => source.complete(),
    out,
    requested,
    get error() {
      return error;
    },
  };
}

/** A round of `step`: group accuracies as pairs (G = 2), records named `${tag}/p`. */
const round = (step: number, tag: string, accuracy: number[]) => scoredBatch({ step, G, accuracy, prefix: tag });

test('drops groups whose mean accuracy is outside (minAcc, maxAcc), bounds excluded', () => {
  const d = drive(opts({ minAcc: 0.25, maxAcc: 0.75, batchSize: 2 }));
  // Group means: 0, 0.5, 1, 0.25 (= minAcc), 0.75 (= maxAcc), 0.5
  d.push(round(1, 'a', [0, 0, 0, 1, 1, 1, 0.5, 0, 1, 0.5, 1, 0]));
  assert.deepEqual(d.requested, []);
  assert.equal(d.out.length, 1);
  const b = d.out[0];
  assert.deepEqual(
    b.records.map((r) => r.id),
    ['a/1', 'a/5'],
  );
  assert.deepEqual(Array.from(b.accuracy), [0, 1, 1, 0]);
  assert.deepEqual(b.texts, ['r2', 'r3', 'r10', 'r11'], 'responses stay with their groups');
  assert.equal(b.droppedGroups, 4);
  assert.equal(b.surplusGroups, 0);
  assert.equal(b.rounds, 1);
});

test('asks for more rounds of the same step until the batch is full', () => {
  const d = drive(opts({ batchSize: 3 }));
  d.push(round(4, 'r1', [1, 0, 1, 1, 0, 0])); // 1 kept, 2 dropped
  assert.deepEqual(d.requested, [4]);
  assert.equal(d.out.length, 0);
  d.push(round(4, 'r2', [0, 0, 0, 0, 0, 0])); // 0 kept, 3 dropped
  assert.deepEqual(d.requested, [4, 4]);
  d.push(round(4, 'r3', [1, 0, 0, 1, 1, 1])); // 2 kept, 1 dropped -> full
  assert.deepEqual(d.requested, [4, 4], 'no request once full');
  assert.equal(d.out.length, 1);
  const b = d.out[0];
  assert.deepEqual(
    b.records.map((r) => r.id),
    ['r1/0', 'r3/0', 'r3/1'],
  );
  assert.deepEqual(Array.from(b.accuracy), [1, 0, 1, 0, 0, 1]);
  assert.equal(b.step, 4);
  assert.equal(b.rounds, 3);
  assert.equal(b.droppedGroups, 6);
  assert.equal(b.surplusGroups, 0);
  assert.equal(b.responses.length, 3 * G);
});

test('groups beyond batchSize are discarded and counted as surplus', () => {
  const d = drive(opts({ batchSize: 3 }));
  d.push(round(1, 'r1', [1, 0, 1, 0, 0, 0])); // 2 kept
  d.push(round(1, 'r2', [0, 1, 1, 0, 0, 1, 1, 1])); // 3 kept, 1 dropped -> 5 kept
  assert.equal(d.out.length, 1);
  const b = d.out[0];
  assert.deepEqual(
    b.records.map((r) => r.id),
    ['r1/0', 'r1/1', 'r2/0'],
  );
  assert.equal(b.surplusGroups, 2);
  assert.equal(b.droppedGroups, 2);
  assert.equal(b.rewards.length, 3 * G);
  assert.deepEqual(d.requested, [1]);
});

test('after maxTries rounds it emits what it has, possibly short or empty', () => {
  const d = drive(opts({ batchSize: 2, maxTries: 3 }));
  d.push(round(2, 'r1', [1, 1, 0, 0]));
  d.push(round(2, 'r2', [1, 0, 1, 1]));
  d.push(round(2, 'r3', [0, 0, 0, 0]));
  assert.deepEqual(d.requested, [2, 2], 'maxTries - 1 extra rounds');
  assert.equal(d.out.length, 1);
  assert.deepEqual(
    d.out[0].records.map((r) => r.id),
    ['r2/0'],
  );
  assert.equal(d.out[0].rounds, 3);
  assert.equal(d.out[0].droppedGroups, 5);

  const e = drive(opts({ batchSize: 2, maxTries: 2 }));
  e.push(round(1, 'x', [1, 1, 1, 1]));
  e.push(round(1, 'y', [0, 0, 0, 0]));
  assert.equal(e.out.length, 1);
  assert.equal(e.out[0].records.length, 0);
  assert.equal(e.out[0].responses.length, 0);
  assert.equal(e.out[0].droppedGroups, 4);
  assert.equal(e.out[0].rounds, 2);
});

test('disabled: identity with zero counts, no extra rounds', async () => {
  const batches = [round(1, 'a', [1, 1, 0, 0]), round(2, 'b', [1, 0, 0, 0])];
  const requested: number[] = [];
  const out = await collect(from(batches).pipe(keepInformativeGroups(opts({ enabled: false }), (s) => requested.push(s))));
  assert.equal(out.length, 2);
  out.forEach((b, i) => {
    assert.equal(b.droppedGroups, 0);
    assert.equal(b.surplusGroups, 0);
    assert.equal(b.records, batches[i].records);
    assert.equal(b.accuracy, batches[i].accuracy);
    assert.equal(b.rounds, 1);
  });
  assert.deepEqual(requested, []);
});

test('interleaved rounds of several steps accumulate separately', () => {
  const d = drive(opts({ batchSize: 2 }));
  d.push(round(1, 's1r1', [1, 0, 1, 1])); // step 1: 1 kept
  d.push(round(2, 's2r1', [0, 0, 1, 1])); // step 2: 0 kept
  assert.deepEqual(d.requested, [1, 2]);
  d.push(round(1, 's1r2', [0, 1, 0, 0])); // step 1: 2 kept -> emitted
  d.push(round(2, 's2r2', [1, 0, 0, 0])); // step 2: 1 kept
  d.push(round(2, 's2r3', [0, 1, 1, 0])); // step 2: 3 kept -> emitted, 1 surplus
  assert.deepEqual(d.requested, [1, 2, 2]);
  assert.deepEqual(
    d.out.map((b) => [b.step, b.rounds, b.droppedGroups, b.surplusGroups]),
    [
      [1, 2, 2, 0],
      [2, 3, 3, 1],
    ],
  );
  assert.deepEqual(
    d.out[0].records.map((r) => r.id),
    ['s1r1/0', 's1r2/0'],
  );
  assert.deepEqual(
    d.out[1].records.map((r) => r.id),
    ['s2r2/0', 's2r3/0'],
  );
});

test('a throwing requestRound errors the stream', () => {
  const d = drive(opts(), () => {
    throw new Error('step 1 is not in flight');
  });
  d.push(round(1, 'a', [0, 0, 0, 0]));
  assert.match(String(d.error), /not in flight/);
  assert.equal(d.out.length, 0);
});

test('with a credit gate: extra rounds flow back through requestRound and every step reaches the sink once', async () => {
  const steps = 20;
  const batchSize = 2;
  const gate = new CreditGate({ maxInflight: 2, maxStaleness: 1, maxSteps: steps });
  const stream = RecordStream.open(syntheticTask(1000), { split: 'train', seed: 8 });
  // Response (p, g) answers (seed + p + g) % 10: right about one time in ten.
  const engine = new FakeEngine();
  const reward = defineReward('exact', (i) => {
    const accuracy = i.response === `<answer>${i.answer}</answer>` ? 1 : 0;
    return { overall: accuracy, accuracy, format: 1 };
  });
  const grants: Grant[] = [];
  const out = await collect(
    promptBatches(stream, { batchSize, grants: gate.grants$.pipe(tap((g) => grants.push(g))), seed: 3 }).pipe(
      sampleGroups(engine, { n: 4 }),
      scoreRewards(reward),
      keepInformativeGroups(opts({ batchSize, maxTries: 6 }), (step) => gate.requestRound(step)),
      concatMap(async (b) => {
        await new Promise<void>((resolve) => setImmediate(resolve));
        gate.complete(b.step);
        return b;
      }),
    ),
  );
  // A step that needs more rounds can be overtaken by the next one, so compare as sets.
  assert.deepEqual(
    out.map((b) => b.step).sort((a, b) => a - b),
    Array.from({ length: steps }, (_, i) => i + 1),
  );
  assert.equal(gate.inflight, 0);
  let extra = 0;
  for (const b of out) {
    assert.ok(b.records.length <= batchSize);
    assert.ok(b.rounds >= 1 && b.rounds <= 6);
    if (b.records.length < batchSize) assert.equal(b.rounds, 6, 'short only after maxTries');
    for (const m of groupMeans(b.accuracy, 4)) assert.ok(m > 0.01 && m < 0.99);
    assert.equal(b.droppedGroups + b.records.length + b.surplusGroups, b.rounds * batchSize);
    extra += b.rounds - 1;
  }
  assert.ok(extra > 0, 'some steps needed extra rounds');
  assert.equal(grants.length, steps + extra);
  assert.equal(grants.filter((g) => g.round > 1).length, extra);
  // Every round took batchSize records, nothing more.
  assert.equal(stream.cursor().position, grants.length * batchSize);
});
