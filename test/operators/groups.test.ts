import { test } from 'node:test';
import assert from 'node:assert/strict';
import { concatGroups, groupMeans, selectGroups } from '../../operators/groups.ts';
import type { RolloutBatch, ScoredBatch } from '../../operators/types.ts';
import { patternImage, scoredBatch } from './fakes.ts';

const G = 2;

/** Response i of the batch carries i in every per-response field, so a selection shows where rows went. */
function tagged(prefix: string, P: number, step = 1): ScoredBatch {
  const n = P * G;
  const b = scoredBatch({
    step,
    G,
    prefix,
    accuracy: Array.from({ length: n }, (_, i) => i / 10),
    rewards: Array.from({ length: n }, (_, i) => 100 + i),
    versions: Array.from({ length: n }, (_, i) => i),
    failures: [
      { id: `${prefix}/1`, index: 2, reward: 'r', kind: 'threw', reason: 'x' },
      { id: `${prefix}/2`, index: 5, reward: 'r', kind: 'invalid', reason: 'y' },
    ],
  });
  return { ...b, finished: Uint8Array.from({ length: n }, (_, i) => i % 2), format: Float32Array.from({ length: n }, (_, i) => i) };
}

const rowsOf = (b: ScoredBatch) => Array.from(b.versions);

test('selectGroups keeps whole groups in the order given, prompt-major, with typed arrays of the same kind', () => {
  const b = tagged('a', 4);
  const s = selectGroups(b, [2, 0]);
  assert.deepEqual(
    s.records.map((r) => r.id),
    ['a/2', 'a/0'],
  );
  assert.deepEqual(rowsOf(s), [4, 5, 0, 1]);
  assert.deepEqual(s.texts, ['r4', 'r5', 'r0', 'r1']);
  assert.deepEqual(s.responses, [b.responses[4], b.responses[5], b.responses[0], b.responses[1]]);
  assert.deepEqual(s.oldLogprobs, [b.oldLogprobs[4], b.oldLogprobs[5], b.oldLogprobs[0], b.oldLogprobs[1]]);
  assert.deepEqual(Array.from(s.rewards), [104, 105, 100, 101]);
  assert.deepEqual(Array.from(s.accuracy), Array.from(Float32Array.from([0.4, 0.5, 0, 0.1])));
  assert.deepEqual(Array.from(s.format), [4, 5, 0, 1]);
  assert.deepEqual(Array.from(s.finished), [0, 1, 0, 1]);
  assert.ok(s.rewards instanceof Float32Array && s.finished instanceof Uint8Array && s.versions instanceof Int32Array);
  assert.equal(s.groupSize, G);
  assert.equal(s.step, b.step);
  assert.equal(s.cursor, b.cursor);
  // The input is untouched.
  assert.deepEqual(rowsOf(b), [0, 1, 2, 3, 4, 5, 6, 7]);
});

test('selectGroups re-indexes reward failures and drops those of groups left out', () => {
  const b = tagged('a', 4);
  const s = selectGroups(b, [2, 1]);
  // Failure at old row 5 (group 2, g 1) -> new row 1; old row 2 (group 1, g 0) -> new row 2.
  assert.deepEqual(
    s.rewardFailures.map((f) => [f.id, f.index]),
    [
      ['a/1', 2],
      ['a/2', 1],
    ],
  );
  assert.deepEqual(selectGroups(b, [0, 3]).rewardFailures, []);
  const none = selectGroups(b, []);
  assert.equal(none.records.length, 0);
  assert.equal(none.responses.length, 0);
  assert.equal(none.rewards.length, 0);
});

test('selectGroups also selects the fields later stages add (masked views, reference log-probs, advantages)', () => {
  const base = tagged('a', 3);
  const n = 3 * G;
  const b: RolloutBatch = {
    ...base,
    rewards: Float32Array.of(1, 0, 1, 1, 0, 1), // group 1 has equal rewards
    maskSeed: 9,
    maskedImages: [0, 1, 2].map((p) => patternImage(2, 2, 50 + p)),
    maskedLogprobs: Array.from({ length: n }, (_, i) => Float32Array.of(-i)),
    refLogprobs: Array.from({ length: n }, (_, i) => Float32Array.of(-10 - i)),
    advantages: Float32Array.from({ length: n }, (_, i) => i / 2),
    zeroVarianceGroups: 1,
  };
  const s = selectGroups(b, [2, 0]);
  assert.deepEqual(s.maskedImages, [b.maskedImages![2], b.maskedImages![0]]);
  assert.deepEqual(
    s.maskedLogprobs!.map((x) => x[0]),
    [-4, -5, -0, -1],
  );
  assert.deepEqual(
    s.refLogprobs!.map((x) => x[0]),
    [-14, -15, -10, -11],
  );
  assert.deepEqual(Array.from(s.advantages), [2, 2.5, 0, 0.5]);
  assert.ok(s.advantages instanceof Float32Array);
  assert.equal(s.zeroVarianceGroups, 0, 'the constant group was left out');
  assert.equal(selectGroups(b, [1, 2]).zeroVarianceGroups, 1);
});

test('concatGroups appends the groups of b after those of a; cursor, seed and step of b; rounds and timings add', () => {
  const a: ScoredBatch = { ...tagged('a', 2, 5), rounds: 1, seed: 11, timing: { gen: 1, reward: 0.5 } };
  const b: ScoredBatch = { ...tagged('b', 3, 5), rounds: 2, seed: 22, timing: { gen: 2, ref: 0.25 }, cursor: { ...tagged('b', 3).cursor, position: 99 } };
  const c = concatGroups(a, b);
  assert.deepEqual(
    c.records.map((r) => r.id),
    ['a/0', 'a/1', 'b/0', 'b/1', 'b/2'],
  );
  assert.deepEqual(rowsOf(c), [0, 1, 2, 3, 0, 1, 2, 3, 4, 5]);
  assert.deepEqual(c.texts, ['r0', 'r1', 'r2', 'r3', 'r0', 'r1', 'r2', 'r3', 'r4', 'r5']);
  assert.deepEqual(Array.from(c.rewards), [100, 101, 102, 103, 100, 101, 102, 103, 104, 105]);
  assert.deepEqual(Array.from(c.finished), [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
  assert.ok(c.accuracy instanceof Float32Array && c.versions instanceof Int32Array);
  assert.equal(c.responses.length, c.oldLogprobs.length);
  // Failures of b move by a's 4 responses; a's at index 5 is outside a (2 groups), kept as given.
  assert.deepEqual(
    c.rewardFailures.map((f) => [f.id, f.index]),
    [
      ['a/1', 2],
      ['a/2', 5],
      ['b/1', 6],
      ['b/2', 9],
    ],
  );
  assert.equal(c.rounds, 3);
  assert.equal(c.seed, 22);
  assert.equal(c.cursor.position, 99);
  assert.equal(c.step, 5);
  assert.deepEqual(c.timing, { gen: 3, reward: 0.5, ref: 0.25 });
  assert.throws(() => concatGroups(a, { ...b, groupSize: 3 }), /group sizes 2 and 3 differ/);
});

test('selecting from a concatenation equals concatenating selections', () => {
  const a = tagged('a', 3);
  const b = tagged('b', 2);
  const left = selectGroups(concatGroups(a, b), [1, 3, 4]);
  const right = concatGroups(selectGroups(a, [1]), selectGroups(b, [0, 1]));
  assert.deepEqual(
    left.records.map((r) => r.id),
    right.records.map((r) => r.id),
  );
  assert.deepEqual(rowsOf(left), rowsOf(right));
  assert.deepEqual(Array.from(left.rewards), Array.from(right.rewards));
  assert.deepEqual(left.rewardFailures, right.rewardFailures);
});

test('groupMeans averages each run of G values', () => {
  assert.deepEqual(Array.from(groupMeans([1, 0, 0, 0, 1, 1], 2)), [0.5, 0, 1]);
  assert.deepEqual(Array.from(groupMeans(Float32Array.of(0.25, 0.75, 1), 3)), [2 / 3]);
  assert.deepEqual(Array.from(groupMeans([], 4)), []);
});
