import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../util/rng.ts';

test('Rng: same seed, same stream; state round-trips exactly', () => {
  const a = Rng.seeded(42);
  const b = Rng.seeded(42);
  const xs = Array.from({ length: 5 }, () => a.float());
  assert.deepEqual(
    xs,
    Array.from({ length: 5 }, () => b.float()),
  );
  const saved = a.state();
  const next = [a.float(), a.int(10), a.normal()];
  const c = Rng.fromState(JSON.parse(JSON.stringify(saved)));
  assert.deepEqual([c.float(), c.int(10), c.normal()], next);
  assert.notDeepEqual(Rng.seeded(43).float(), Rng.seeded(42).float());
});

test('Rng: derived streams are stable and distinct', () => {
  assert.equal(Rng.derive(1, 'mask', 3).float(), Rng.derive(1, 'mask', 3).float());
  assert.notEqual(Rng.derive(1, 'mask', 3).float(), Rng.derive(1, 'mask', 4).float());
  assert.notEqual(Rng.derive(1, 'mask').float(), Rng.derive(2, 'mask').float());
});

test('Rng: uniform floats have the right mean and ints stay in range', () => {
  const r = Rng.seeded(7);
  let s = 0;
  for (let i = 0; i < 20000; i++) s += r.float();
  assert.ok(Math.abs(s / 20000 - 0.5) < 0.01);
  for (let i = 0; i < 1000; i++) {
    const k = r.int(3);
    assert.ok(k >= 0 && k < 3 && Number.isInteger(k));
  }
  assert.throws(() => Rng.fromState([1, 2]), /four integers/);
});
