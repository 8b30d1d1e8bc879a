import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Subject, tap } from 'rxjs';
import { CreditGate, type Grant } from '../../operators/credit-gate.ts';
import { batchSeed, promptBatches } from '../../operators/prompt-batches.ts';
import type { PromptBatch } from '../../operators/types.ts';
import { RecordStream } from '../../tasks/stream.ts';
import { DigitsTask } from '../../tasks/digits/task.ts';
import { mixSeed } from '../../util/rng.ts';
import { collect, syntheticTask } from './fakes.ts';

const ids = (b: PromptBatch) => b.records.map((r) => r.id);

/** The source driven by hand: a grant is a `next` on the subject. */
function manual(stream: RecordStream, batchSize: number, seed = 5) {
  const grants = new Subject<Grant>();
  const out: PromptBatch[] = [];
  let completed = false;
  let error: unknown;
  promptBatches(stream, { batchSize, grants, seed }).subscribe({ next: (b) => out.push(b), complete: () => (completed = true), error: (e) => (error = e) });
  return {
    grants,
    out,
    get completed() {
      return completed;
    },
    get error() {
      return error;
    },
  };
}

test('one batch per grant, nothing read ahead; the cursor is the stream position after the batch', () => {
  const task = syntheticTask(10);
  const stream = RecordStream.open(task, { split: 'train', seed: 3 });
  const src = manual(stream, 4);
  assert.equal(src.out.length, 0);
  assert.equal(stream.cursor().position, 0, 'nothing is taken before a grant');

  src.grants.next({ step: 1, round: 1 });
  assert.equal(src.out.length, 1);
  assert.equal(src.out[0].records.length, 4);
  assert.deepEqual(src.out[0].cursor, stream.cursor());
  assert.equal(src.out[0].cursor.position, 4);

  src.grants.next({ step: 2, round: 1 });
  src.grants.next({ step: 3, round: 1 }); // crosses into epoch 1 (10 records per epoch)
  assert.equal(src.out.length, 3);
  assert.deepEqual(
    src.out.map((b) => b.step),
    [1, 2, 3],
  );
  assert.deepEqual(
    src.out.map((b) => [b.cursor.epoch, b.cursor.position]),
    [
      [0, 4],
      [0, 8],
      [1, 2],
    ],
  );
  assert.deepEqual(src.out[2].cursor, stream.cursor());
  for (const b of src.out) {
    assert.equal(b.rounds, 1);
    assert.deepEqual(b.timing, {});
  }

  // Resuming from a batch's cursor yields exactly the records of the next batch.
  const resumed = RecordStream.resume(task, src.out[0].cursor);
  assert.deepEqual(
    resumed.take(4).map((r) => r.id),
    ids(src.out[1]),
  );
  // The records are those of a fresh stream with the same seed, in order.
  const fresh = RecordStream.open(task, { split: 'train', seed: 3 });
  assert.deepEqual(
    fresh.take(12).map((r) => r.id),
    src.out.flatMap(ids),
  );
  assert.equal(src.completed, false);
  src.grants.complete();
  assert.equal(src.completed, true, 'the source ends with its grants');
});

test('seeds derive from (seed, step, round) deterministically', () => {
  assert.equal(batchSeed(5, 3, 1), mixSeed(5, 'rollout/3/1'));
  assert.equal(batchSeed(5, 3, 1), batchSeed(5, 3, 1));
  const seeds = new Set([batchSeed(5, 3, 1), batchSeed(5, 3, 2), batchSeed(5, 4, 1), batchSeed(6, 3, 1)]);
  assert.equal(seeds.size, 4, 'step, round and run seed each change the batch seed');

  const run = (seed: number) => {
    const src = manual(RecordStream.open(syntheticTask(10), { split: 'train', seed: 1 }), 2, seed);
    for (const g of [
      { step: 1, round: 1 },
      { step: 1, round: 2 },
      { step: 2, round: 1 },
    ])
      src.grants.next(g);
    return src.out;
  };
  const a = run(5);
  assert.deepEqual(
    a.map((b) => b.seed),
    [batchSeed(5, 1, 1), batchSeed(5, 1, 2), batchSeed(5, 2, 1)],
  );
  assert.deepEqual(
    a.map((b) => b.step),
    [1, 1, 2],
    'an extra round of step 1 is a batch of step 1',
  );
  assert.notDeepEqual(ids(a[0]), ids(a[1]), 'an extra round takes new records');
  const b = run(5);
  assert.deepEqual(
    b.map((x) => x.seed),
    a.map((x) => x.seed),
  );
  assert.deepEqual(b.map(ids), a.map(ids));
  assert.notEqual(run(6)[0].seed, a[0].seed);
});

test('a bounded stream (epochs: 1) completes after its last, partial batch', () => {
  const src = manual(RecordStream.open(syntheticTask(5), { split: 'test', epochs: 1 }), 2);
  for (let s = 1; s <= 5; s++) src.grants.next({ step: s, round: 1 });
  assert.deepEqual(
    src.out.map((b) => b.records.length),
    [2, 2, 1],
  );
  assert.deepEqual(src.out.flatMap(ids), ['synthetic/test/0', 'synthetic/test/1', 'synthetic/test/2', 'synthetic/test/3', 'synthetic/test/4']);
  assert.equal(src.completed, true);
  assert.equal(src.error, undefined);
});

test('a bounded stream whose size is a multiple of the batch size completes with its last full batch', () => {
  const src = manual(RecordStream.open(syntheticTask(4), { split: 'test', epochs: 1 }), 2);
  src.grants.next({ step: 1, round: 1 });
  assert.equal(src.completed, false);
  src.grants.next({ step: 2, round: 1 });
  assert.equal(src.completed, true);
  assert.deepEqual(
    src.out.map((b) => b.records.length),
    [2, 2],
  );
});

test('an error of the grants reaches the subscriber; a bad batch size is refused', () => {
  const src = manual(RecordStream.open(syntheticTask(4), { split: 'train' }), 2);
  src.grants.error(new Error('gate broke'));
  assert.match(String(src.error), /gate broke/);
  const grants = new Subject<Grant>();
  assert.throws(() => promptBatches(RecordStream.open(syntheticTask(4), { split: 'train' }), { batchSize: 0, grants, seed: 0 }), /batchSize/);
  assert.throws(() => promptBatches(RecordStream.open(syntheticTask(4), { split: 'train' }), { batchSize: 1.5, grants, seed: 0 }), /batchSize/);
});

test('over a digits stream with a credit gate: a batch per admitted step, records in stream order', async () => {
  const task = new DigitsTask({ families: ['read'], sizes: { train: 40 } });
  const stream = RecordStream.open(task, { split: 'train', seed: 2 });
  const gate = new CreditGate({ maxStaleness: 1, maxSteps: 4 });
  const seen: PromptBatch[] = [];
  const batches = promptBatches(stream, { batchSize: 3, grants: gate.grants$, seed: 9 });
  await collect(
    batches.pipe(
      tap((b) => {
        seen.push(b);
        setImmediate(() => gate.complete(b.step));
      }),
    ),
  );
  assert.deepEqual(
    seen.map((b) => b.step),
    [1, 2, 3, 4],
  );
  const expected = RecordStream.open(task, { split: 'train', seed: 2 }).take(12);
  assert.deepEqual(
    seen.flatMap((b) => b.records.map((r) => r.id)),
    expected.map((r) => r.id),
  );
  for (const r of seen.flatMap((b) => b.records)) {
    assert.equal(r.family, 'read');
    assert.equal(r.image.height, 28);
    assert.equal(r.image.width, 56);
  }
  assert.equal(seen[3].cursor.position, 12);
  assert.deepEqual(
    seen.map((b) => b.seed),
    [1, 2, 3, 4].map((s) => batchSeed(9, s, 1)),
  );
});
