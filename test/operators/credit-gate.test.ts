import { test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import { concatMap, tap } from 'rxjs';
import { CreditGate, type Grant } from '../../operators/credit-gate.ts';
import { promptBatches } from '../../operators/prompt-batches.ts';
import { sampleGroups } from '../../operators/sample-groups.ts';
import { RecordStream } from '../../tasks/stream.ts';
import { collect, FakeEngine, syntheticTask, ticks } from './fakes.ts';

// The test runner gives each file its own process, so exposing gc here affects only this file.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Subscribes to the gate and records grants and completion. */
function watch(gate: CreditGate) {
  const grants: Grant[] = [];
  let completed = false;
  let error: unknown;
  const sub = gate.grants$.subscribe({ next: (g) => grants.push(g), complete: () => (completed = true), error: (e) => (error = e) });
  return {
    grants,
    sub,
    get completed() {
      return completed;
    },
    get error() {
      return error;
    },
  };
}

test('limit is min(maxInflight, maxStaleness + 1); maxInflight defaults to maxStaleness + 1', () => {
  assert.equal(new CreditGate().limit, 1);
  assert.equal(new CreditGate({ maxStaleness: 2 }).limit, 3);
  assert.equal(new CreditGate({ maxInflight: 3, maxStaleness: 1 }).limit, 2);
  assert.equal(new CreditGate({ maxInflight: 2, maxStaleness: 5 }).limit, 2);
  assert.equal(new CreditGate({ maxInflight: 4, maxStaleness: 3 }).limit, 4);
  assert.throws(() => new CreditGate({ maxInflight: 0 }), /maxInflight/);
  assert.throws(() => new CreditGate({ maxStaleness: -1 }), /maxStaleness/);
  assert.throws(() => new CreditGate({ maxStaleness: 0.5 }), /maxStaleness/);
});

test('admits at most `limit` steps; each complete admits the next, in step order', async () => {
  const gate = new CreditGate({ maxInflight: 3, maxStaleness: 1 });
  const w = watch(gate);
  assert.equal(w.grants.length, 0, 'grants are asynchronous');
  await ticks(5);
  assert.deepEqual(w.grants, [
    { step: 1, round: 1 },
    { step: 2, round: 1 },
  ]);
  assert.equal(gate.inflight, 2);
  gate.complete(2);
  await ticks(5);
  assert.deepEqual(w.grants.slice(2), [{ step: 3, round: 1 }]);
  gate.complete(1);
  gate.complete(3);
  await ticks(5);
  assert.deepEqual(
    w.grants.slice(3).map((g) => g.step),
    [4, 5],
  );
  assert.equal(gate.inflight, 2);
  assert.equal(gate.peakInflight, 2);
  assert.equal(w.completed, false);
  w.sub.unsubscribe();
});

test('firstStep and maxSteps: grants$ completes once the last admitted step completes', async () => {
  const gate = new CreditGate({ maxStaleness: 1, firstStep: 10, maxSteps: 12 });
  const w = watch(gate);
  await ticks(5);
  assert.deepEqual(
    w.grants.map((g) => g.step),
    [10, 11],
  );
  gate.complete(10);
  gate.complete(11);
  await ticks(5);
  assert.deepEqual(
    w.grants.map((g) => g.step),
    [10, 11, 12],
  );
  assert.equal(w.completed, false);
  gate.complete(12);
  await ticks(5);
  assert.equal(w.completed, true);
  assert.equal(w.grants.length, 3);
});

test('stop() admits nothing more and completes grants$ after the steps in flight complete', async () => {
  const gate = new CreditGate({ maxInflight: 2, maxStaleness: 4 });
  const w = watch(gate);
  await ticks(5);
  assert.equal(w.grants.length, 2);
  gate.stop();
  assert.equal(gate.stopped, true);
  gate.complete(1);
  await ticks(5);
  assert.equal(w.grants.length, 2, 'no step admitted after stop');
  assert.equal(w.completed, false, 'step 2 is still in flight');
  gate.complete(2);
  await ticks(5);
  assert.equal(w.completed, true);
  assert.equal(gate.inflight, 0);
});

test('stop() with nothing in flight completes grants$ at once', async () => {
  const gate = new CreditGate();
  gate.stop();
  assert.deepEqual(await collect(gate.grants$), []);
});

test('requestRound grants rounds 2, 3 of an admitted step at once, without a new credit', async () => {
  const gate = new CreditGate({ maxInflight: 1 });
  const w = watch(gate);
  await ticks(5);
  assert.deepEqual(w.grants, [{ step: 1, round: 1 }]);
  gate.requestRound(1);
  gate.requestRound(1);
  await ticks(5);
  assert.deepEqual(w.grants, [
    { step: 1, round: 1 },
    { step: 1, round: 2 },
    { step: 1, round: 3 },
  ]);
  assert.equal(gate.inflight, 1, 'extra rounds use the step’s credit');
  gate.complete(1);
  await ticks(5);
  assert.deepEqual(w.grants[3], { step: 2, round: 1 });
  w.sub.unsubscribe();
});

test('errors: completing or extending a step not in flight, a second subscriber', async () => {
  const gate = new CreditGate({ maxInflight: 1 });
  const w = watch(gate);
  await ticks(5);
  assert.throws(() => gate.complete(7), /step 7 completed but it is not in flight/);
  assert.throws(() => gate.requestRound(7), /step 7 is not in flight/);
  gate.complete(1);
  assert.throws(() => gate.complete(1), /step 1 completed but it is not in flight/);
  const second = watch(gate);
  assert.match(String(second.error), /one subscriber/);
  w.sub.unsubscribe();
});

test('backpressure: a fast source and a slow sink over 300 steps keep at most `limit` batches between them', async () => {
  const steps = 300;
  const maxInflight = 3;
  const batchSize = 2;
  const gate = new CreditGate({ maxInflight, maxStaleness: 5, maxSteps: steps });
  // 32x32 images (3 kB each) make a leak of the batches visible in the heap (over 1 MB by step 300).
  const stream = RecordStream.open(syntheticTask(97, { height: 32, width: 32 }), { split: 'train', seed: 4 });
  const engine = new FakeEngine({ keepRequests: false });
  let emitted = 0;
  let completed = 0;
  let maxBetween = 0;
  const arrived: number[] = [];
  const refs: WeakRef<object>[] = [];
  const retained: number[] = [];
  const heap: number[] = [];
  const measure = () => {
    gc();
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };

  await collect(
    promptBatches(stream, { batchSize, grants: gate.grants$, seed: 1 }).pipe(
      tap((b) => {
        emitted++;
        maxBetween = Math.max(maxBetween, emitted - completed);
        refs.push(new WeakRef(b.records));
      }),
      sampleGroups(engine, { n: 2 }),
      concatMap(async (b) => {
        // The sink is slower than everything upstream.
        await new Promise<void>((resolve) => setTimeout(resolve, b.step % 3 === 0 ? 1 : 0));
        arrived.push(b.step);
        if (b.step % 50 === 0) {
          heap.push(measure());
          retained.push(refs.filter((r) => r.deref() !== undefined).length);
        }
        completed++;
        gate.complete(b.step);
        return b.step;
      }),
    ),
  );

  assert.equal(emitted, steps);
  assert.deepEqual(
    arrived,
    Array.from({ length: steps }, (_, i) => i + 1),
  );
  assert.ok(maxBetween <= gate.limit, `${maxBetween} batches between source and sink, limit ${gate.limit}`);
  assert.equal(maxBetween, maxInflight, 'the fast source fills the window');
  assert.equal(gate.peakInflight, maxInflight);
  assert.equal(gate.inflight, 0);
  assert.equal(engine.maxActive, 1, 'sampleGroups runs one batch at a time');
  // Only the batches in flight are reachable: the sink's own and those queued ahead of it.
  assert.equal(retained.length, steps / 50);
  for (const n of retained) assert.ok(n <= maxInflight + 1, `${n} batches retained`);
  // Flat heap: from step 100 to step 300 it grows by much less than keeping every batch would cost.
  const growth = heap[heap.length - 1] - heap[1];
  assert.ok(growth < 400_000, `heap grew by ${growth} bytes`);
});
