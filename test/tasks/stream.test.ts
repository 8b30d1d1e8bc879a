import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeImage } from '../../util/image.ts';
import { RecordStream } from '../../tasks/stream.ts';
import type { Split, Task, TaskRecord } from '../../tasks/types.ts';

/** A task whose record i of a split is identified by its id, to check orders exactly. */
function fakeTask(n = 10, fingerprint = 'fake/v1'): Task {
  return {
    name: 'fake',
    imageHeight: 7,
    imageWidth: 7,
    families: [{ name: 'f', visionDependency: 'high', answerType: 'integer', template: 'q' }],
    fingerprint,
    size: (split: Split) => (split === 'train' ? n : 3),
    recordAt: (split: Split, i: number): TaskRecord => ({
      id: `${split}/${i}`,
      image: makeImage(7, 7),
      question: 'q',
      answer: String(i),
      family: 'f',
      visionDependency: 'high',
      meta: {},
    }),
  };
}

const ids = (rs: TaskRecord[]): string[] => rs.map((r) => r.id);

test('stream: every epoch visits each record once, in a seeded order that changes by epoch', () => {
  const s = RecordStream.open(fakeTask(), { split: 'train', seed: 3 });
  const e0 = ids(s.take(10));
  const e1 = ids(s.take(10));
  assert.deepEqual([...e0].sort(), Array.from({ length: 10 }, (_, i) => `train/${i}`).sort());
  assert.deepEqual([...e1].sort(), [...e0].sort());
  assert.notDeepEqual(e0, e1);
  assert.equal(s.epoch, 2);
  assert.deepEqual(ids(RecordStream.open(fakeTask(), { split: 'train', seed: 3 }).take(10)), e0, 'same seed, same order');
  assert.notDeepEqual(ids(RecordStream.open(fakeTask(), { split: 'train', seed: 4 }).take(10)), e0);
});

test('stream: evaluation splits default to index order; bounded streams end', () => {
  const s = RecordStream.open(fakeTask(), { split: 'test', epochs: 2 });
  assert.deepEqual(ids([...s]), ['test/0', 'test/1', 'test/2', 'test/0', 'test/1', 'test/2']);
  assert.equal(s.next().done, true);
  assert.equal(s.peekIndex(), null);
});

test('stream: a JSON round-tripped cursor resumes exactly, across epoch boundaries', () => {
  const task = fakeTask(7);
  for (const cut of [0, 3, 7, 10, 14]) {
    const a = RecordStream.open(task, { split: 'train', seed: 11 });
    a.take(cut);
    const saved = JSON.parse(JSON.stringify(a.cursor()));
    const expected = ids(a.take(20));
    const b = RecordStream.resume(task, saved);
    assert.deepEqual(ids(b.take(20)), expected, `cut at ${cut}`);
    assert.deepEqual(b.cursor(), a.cursor());
  }
});

test('stream: refuses a cursor from another data configuration or a corrupt one', () => {
  const a = RecordStream.open(fakeTask(), { split: 'train' });
  a.take(2);
  const c = a.cursor();
  assert.throws(() => RecordStream.resume(fakeTask(10, 'fake/v2'), c), /data configuration changed/);
  assert.throws(() => RecordStream.resume(fakeTask(), { ...c, position: 99 }), /outside split/);
  assert.throws(() => RecordStream.resume(fakeTask(), { ...c, version: 2 } as never), /unsupported/);
  assert.throws(() => RecordStream.open(fakeTask(), { split: 'dev' as Split }), /split must be/);
  assert.throws(() => RecordStream.open(fakeTask(), { split: 'train', epochs: 0 }), /epochs/);
});
