import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listenStages, noteStage, StepClock, unionWithin } from '../../operators/stage-clock.ts';
import { Rng } from '../../util/rng.ts';

/** The union's length by counting unit cells: an independent reference on integer intervals. */
function cells(intervals: [number, number][], a: number, b: number): number {
  let n = 0;
  for (let x = a; x < b; x++) if (intervals.some(([s, e]) => s <= x && x + 1 <= e)) n++;
  return n;
}

test('unionWithin: length of the union of intervals clipped to a window, against counting cells', () => {
  const rng = Rng.seeded(7);
  for (let trial = 0; trial < 200; trial++) {
    const intervals: [number, number][] = Array.from({ length: rng.int(6) }, () => {
      const s = rng.int(40) - 5;
      return [s, s + rng.int(15)];
    });
    const a = rng.int(20);
    const b = a + rng.int(25);
    assert.equal(unionWithin(intervals, a, b), cells(intervals, a, b), JSON.stringify({ intervals, a, b }));
  }
});

test('StepClock hears noted stages while open and its own notes; busySeconds in seconds', () => {
  const heard: string[] = [];
  const stop = listenStages((k) => heard.push(k));
  const clock = new StepClock();
  noteStage('gen', 0, 1000);
  noteStage('reward', 500, 1500);
  clock.note(2000, 2500);
  assert.equal(clock.busySeconds(0, 3000), 2);
  assert.equal(clock.busySeconds(1000, 2200), 0.7);
  clock.clear();
  assert.equal(clock.busySeconds(0, 3000), 0);
  clock.close();
  noteStage('ref', 0, 1000);
  assert.equal(clock.busySeconds(0, 3000), 0);
  stop();
  noteStage('adv', 0, 1);
  assert.deepEqual(heard, ['gen', 'reward', 'ref']);
});
