import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SteadyEta } from '../../util/eta.ts';

test('the time left counts the steps after the first, not the start-up inside the first', () => {
  const eta = new SteadyEta(10);
  // start-up: the first step is done after 60 s, then each step takes 2 s
  eta.update(1, 60_000);
  assert.ok(Number.isNaN(eta.seconds(1, 60_000)), 'unknown until a second step is done');
  eta.update(2, 62_000);
  assert.equal(eta.seconds(2, 62_000), 16);
  eta.update(5, 68_000);
  assert.equal(eta.seconds(5, 68_000), 10);
  assert.equal(eta.seconds(10, 78_000), 0);
});

test('a resumed run: the first step of this launch is its start, whatever its number', () => {
  const eta = new SteadyEta(100);
  eta.update(41, 5_000);
  eta.update(43, 9_000);
  assert.equal(eta.seconds(43, 9_000), 114);
});
