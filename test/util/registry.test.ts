import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { Registry } from '../../util/registry.ts';
import { parseConfig } from '../../util/schema.ts';

type Scale = (x: number) => number;

function scales(): Registry<Scale> {
  const r = new Registry<Scale>('scale', 'registerScale');
  r.register('double', (x) => 2 * x);
  r.register('half', (x) => x / 2);
  r.alias('twice', 'double');
  return r;
}

test('a registered function is found by its name and by its aliases', () => {
  const r = scales();
  assert.equal(r.get('double')(3), 6);
  assert.equal(r.get('twice')(3), 6);
  assert.equal(r.resolve('twice'), 'double');
  assert.equal(r.resolve('half'), 'half');
  assert.equal(r.resolve('third'), undefined);
  assert.ok(r.has('half') && r.has('twice') && !r.has('third'));
  assert.deepEqual(r.names(), ['double', 'half']);
});

test('an unknown name is an error listing the known names, the aliases and how to add one', () => {
  const r = scales();
  assert.throws(() => r.get('third'), { message: 'unknown scale "third"; known: double, half (also twice) (add one with registerScale)' });
  for (const inherited of ['toString', 'constructor', '__proto__']) assert.throws(() => r.get(inherited), /unknown scale/);
});

test('a name or alias registered twice is refused, and the first registration stays', () => {
  const r = scales();
  assert.throws(() => r.register('double', (x) => 3 * x), { message: 'scale "double" is already registered; choose another name' });
  assert.throws(() => r.register('twice', (x) => 3 * x), /"twice" is already registered/);
  assert.throws(() => r.alias('half', 'double'), /"half" is already registered/);
  assert.throws(() => r.alias('thrice', 'triple'), /unknown scale "triple"/);
  assert.equal(r.get('double')(1), 2);
});

test('names must be identifiers and values must pass the check', () => {
  const r = scales();
  for (const bad of ['', '3x', 'a b', './f.ts:x', 'a.b', 'x:y']) assert.throws(() => r.register(bad, (x) => x), /name .* must be letters, digits/, bad);
  assert.throws(() => r.register('ok', 3 as unknown as Scale), { message: 'scale "ok": must be a function, got number' });
  assert.ok(!r.has('ok'));
  r.register('seq-mean_2', (x) => x);
  assert.ok(r.has('seq-mean_2'));
});

test('the config schema checks a name when a config is parsed, so later registrations count; aliases become the name', () => {
  const r = scales();
  const schema = z.object({ scale: r.name().default('double') }).strict();
  assert.equal(parseConfig(schema, {}, 'cfg').scale, 'double');
  assert.equal(parseConfig(schema, { scale: 'twice' }, 'cfg').scale, 'double');
  assert.throws(() => parseConfig(schema, { scale: 'cube' }, 'cfg'), {
    message: 'invalid cfg: scale: unknown scale "cube"; known: double, half (also twice) (add one with registerScale)',
  });
  assert.throws(() => parseConfig(schema, { scale: 3 }, 'cfg'), { message: /^invalid cfg: scale: .*expected string/ });
  r.register('cube', (x) => x ** 3);
  assert.equal(parseConfig(schema, { scale: 'cube' }, 'cfg').scale, 'cube');
});
