/**
 * WorkerClient and serveCalls on a fixture worker (test/fixtures/calls-worker.ts): start-up, call order,
 * errors, a worker that dies mid-call, moved buffers both ways, and close.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { WorkerClient } from '../../util/worker-client.ts';
import { buffersOf } from '../../util/serve-calls.ts';
import type { FixtureCalls, FixtureInit } from '../fixtures/calls-worker.ts';

const ENTRY = new URL('../fixtures/calls-worker.ts', import.meta.url);
const start = (init: FixtureInit = {}, exitTimeoutMs?: number) => WorkerClient.start<FixtureCalls>(ENTRY, { name: 'fixture', workerData: init, exitTimeoutMs });

test('calls resolve with their results; by default each starts after the previous one has settled', async () => {
  const w = await start();
  try {
    assert.deepEqual(await w.call('echo', { a: [1, 'x'], b: null }), { a: [1, 'x'], b: null });
    // Made without awaiting: the slow first call still finishes before the fast ones start.
    const tags = await Promise.all([w.call('delay', { tag: 'a', ms: 40 }), w.call('delay', { tag: 'b', ms: 0 }), w.call('delay', { tag: 'c', ms: 10 })]);
    assert.deepEqual(tags, ['a', 'b', 'c']);
    assert.deepEqual(await w.call('events'), ['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
  } finally {
    await w.close();
  }
});

test('with interleave, calls start in arrival order and may overlap', async () => {
  const w = await start({ interleave: true });
  try {
    const tags = await Promise.all([w.call('delay', { tag: 'a', ms: 400 }), w.call('delay', { tag: 'b', ms: 0 })]); // a's wait is long: b starts and ends within it even on a busy machine
    assert.deepEqual(tags, ['a', 'b']);
    assert.deepEqual(await w.call('events'), ['start a', 'start b', 'end b', 'end a']);
  } finally {
    await w.close();
  }
});

test('an error in a call rejects that call with what was called and the worker message; the worker goes on', async () => {
  const w = await start();
  try {
    const err: Error = await w.call('fail', 'bad row 3').then(
      () => assert.fail('should reject'),
      (e: Error) => e,
    );
    assert.equal(err.message, 'fail: bad row 3');
    assert.match(String((err.cause as Error).stack), /calls-worker\.ts/, "the worker's stack is the cause");
    await assert.rejects(w.call('fail', 'nope', { what: 'trainer step' }), { message: 'trainer step: nope' });
    // A message that already names the call is not prefixed twice.
    await assert.rejects(w.call('fail', 'trainer step: no gradients', { what: 'trainer step' }), { message: 'trainer step: no gradients' });
    await assert.rejects(w.call('fail', 'failed (rows from 2): x'), { message: 'fail: failed (rows from 2): x' });
    await assert.rejects(w.call('fail', 'fail (rows from 2): x'), { message: 'fail (rows from 2): x' });
    await assert.rejects(w.call('nothing' as 'echo', 1), { message: "nothing: unknown call 'nothing'" });
    assert.equal(await w.call('echo', 7), 7);
  } finally {
    await w.close();
  }
});

test('a worker that fails to start rejects `ready` and every call made meanwhile', async () => {
  await assert.rejects(start({ failStart: 'no config' }), { message: 'fixture failed to start: no config' });
  const w = new WorkerClient<FixtureCalls>(ENTRY, { name: 'fixture', workerData: { failStart: 'no config' } });
  const early = w.call('echo', 1);
  await assert.rejects(early, { message: 'echo: fixture failed to start: no config' });
  await assert.rejects(w.ready, /no config/);
  await assert.rejects(w.call('echo', 2), { message: 'echo: fixture failed to start: no config' });
  await w.close();
});

test('a worker that exits mid-call rejects the pending and every later call, naming the exit code', async () => {
  const w = await start({ interleave: true });
  const pending = w.call('delay', { tag: 'long', ms: 10_000 });
  const exiting = w.call('exit', 3);
  await assert.rejects(pending, { message: 'delay: fixture worker exited unexpectedly (code 3)' });
  await assert.rejects(exiting, { message: 'exit: fixture worker exited unexpectedly (code 3)' });
  await assert.rejects(w.call('echo', 1), { message: 'echo: fixture worker exited unexpectedly (code 3)' });
  await w.close();
  await assert.rejects(w.call('echo', 1), /exited unexpectedly/);
});

test('a worker that crashes (uncaught exception) or is terminated rejects the pending and later calls', async () => {
  const w = await start({ interleave: true });
  const pending = w.call('delay', { tag: 'long', ms: 10_000 });
  await w.call('throwUncaught', 'kaboom');
  await assert.rejects(pending, { message: 'delay: fixture worker crashed: kaboom' });
  await assert.rejects(w.call('echo', 1), { message: 'echo: fixture worker crashed: kaboom' });
  await w.close();

  const t = await start();
  const waiting = t.call('delay', { tag: 'long', ms: 10_000 });
  await t.worker.terminate();
  await assert.rejects(waiting, /^Error: delay: fixture worker exited unexpectedly \(code 1\)$/);
  await t.close();
});

test('buffers move: `transfer` detaches them here; fresh result arrays are moved, views of kept memory are cloned', async () => {
  const w = await start();
  try {
    const values = Float32Array.from([1, 2, 3, 4]);
    const got = await w.call('sum', values, { transfer: [values.buffer] });
    assert.deepEqual(got, { sum: 10, bytes: 16 });
    assert.equal(values.byteLength, 0, 'a transferred buffer is detached on the sending side');
    const cloned = Float32Array.from([5, 6]);
    assert.deepEqual(await w.call('sum', cloned), { sum: 11, bytes: 8 });
    assert.equal(cloned.byteLength, 8, 'without transfer the caller keeps its array');

    const fresh = await w.call('fresh', 3);
    assert.deepEqual(Array.from(fresh), [2, 2, 2]);
    const view = await w.call('view', 2);
    assert.deepEqual(Array.from(view), [1, 1]);
    assert.deepEqual(await w.call('kept'), { fresh: 0, pool: 64 }, 'the fresh array left the worker; its pool stayed');
  } finally {
    await w.close();
  }
  const own = new Float32Array(2);
  const pooled = new Float32Array(8).subarray(2, 4);
  assert.deepEqual(buffersOf({ a: [own, { b: own }], c: pooled, d: 'x', e: new Map([[1, own]]) }), [own.buffer]);
});

test('close lets the calls already made finish, runs the close hook, then later calls reject', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'worker-client-'));
  try {
    const closeLog = path.join(dir, 'closed.json');
    const w = await start({ closeLog });
    const made = [w.call('delay', { tag: 'a', ms: 30 }), w.call('delay', { tag: 'b', ms: 5 })];
    const closing = w.close();
    await assert.rejects(w.call('echo', 1), { message: 'echo: fixture is closed' });
    assert.equal(w.close(), closing, 'close again returns the same promise');
    await closing;
    assert.deepEqual(await Promise.all(made), ['a', 'b']);
    assert.deepEqual(JSON.parse(fs.readFileSync(closeLog, 'utf8')), ['start a', 'end a', 'start b', 'end b']);
    await assert.rejects(w.call('echo', 1), { message: 'echo: fixture is closed' });

    // Interleaved calls are waited for too.
    const i = await start({ interleave: true, closeLog });
    const slow = i.call('delay', { tag: 'slow', ms: 40 });
    await i.close();
    assert.equal(await slow, 'slow');
    assert.deepEqual(JSON.parse(fs.readFileSync(closeLog, 'utf8')), ['start slow', 'end slow']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a worker that does not exit after closing is terminated; a failing close hook rejects close', async () => {
  const lingering = await start({ lingerAfterClose: true }, 50);
  const exit = new Promise<number>((resolve) => lingering.worker.once('exit', resolve));
  await lingering.close();
  assert.equal(await exit, 1, 'terminated');

  const failing = await start({ failClose: 'release failed' });
  await assert.rejects(failing.close(), { message: 'close: release failed' });
  await assert.rejects(failing.call('echo', 1), /closed/);
  await failing.worker.terminate();
});
