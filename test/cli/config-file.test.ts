/** What `--config` reads, and what overrides may name: bounded, never echoed, never reaching a prototype. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';
import { MAX_CONFIG_BYTES, readConfigFile } from '../../cli/config-file.ts';
import { applyOverrides, deepMerge } from '../../util/overrides.ts';
import { readRunConfig } from '../../pipelines/train-config.ts';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'papo-config-file-'));

test('a FIFO, a device, a directory and an oversized file are refused at once, by name', () => {
  const dir = tmp();
  try {
    const fifo = path.join(dir, 'fifo.yaml');
    execFileSync('mkfifo', [fifo]);
    const t0 = Date.now();
    assert.throws(() => readConfigFile(fifo), new RegExp(`cannot read config file ${fifo}: it is not a regular file`));
    assert.ok(Date.now() - t0 < 5000, 'a FIFO with no writer does not block');
    assert.throws(() => readConfigFile('/dev/zero'), /cannot read config file \/dev\/zero: it is not a regular file/);
    assert.throws(() => readConfigFile(dir), /it is a directory/);
    const big = path.join(dir, 'big.yaml');
    fs.writeFileSync(big, `a: "${'x'.repeat(MAX_CONFIG_BYTES)}"\n`);
    assert.throws(() => readConfigFile(big), /has \d+ bytes, more than a config file's 1048576/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a file that is not YAML is named with the place, never quoted', () => {
  const dir = tmp();
  try {
    const secret = path.join(dir, 'secret.yaml');
    fs.writeFileSync(secret, 'root: {x: 1\nhunter2: [\n');
    assert.throws(
      () => readConfigFile(secret),
      (err: Error) => /is not valid YAML\/JSON/.test(err.message) && !err.message.includes('hunter2'),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('__proto__, constructor and prototype are refused as keys of overrides and of config documents', () => {
  for (const key of ['__proto__.polluted', 'trainer.__proto__.x', 'constructor.prototype.x', 'data.prototype'])
    assert.throws(() => applyOverrides({}, [`${key}=1`], parse), /is not a config key/, key);
  assert.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype untouched');
  const doc = parse('__proto__: { polluted: 1 }') as Record<string, unknown>;
  assert.throws(() => deepMerge({}, doc), /'__proto__' is not a config key/);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test("a run's saved config.json that is missing, a directory, cut short or wrong is named with the command", () => {
  const dir = tmp();
  try {
    assert.throws(() => readRunConfig(dir, 'replay'), /^Error: replay: .* is not a papo train run \(no config\.json\)$/);
    fs.mkdirSync(path.join(dir, 'config.json'));
    assert.throws(() => readRunConfig(dir, 'replay'), /replay: cannot read .*config\.json: it is a directory/);
    fs.rmdirSync(path.join(dir, 'config.json'));
    fs.writeFileSync(path.join(dir, 'config.json'), '{"data": {"seed": 1');
    assert.throws(() => readRunConfig(dir, 'rollouts'), /rollouts: .*config\.json is not valid JSON \(cut short, or edited\)/);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ algorithm: { preset: 7 } }));
    assert.throws(() => readRunConfig(dir, 'replay', true), /replay: .*config\.json: .*algorithm\.preset/);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ data: { seed: 4 } }));
    assert.equal(readRunConfig(dir, 'replay', true).data.seed, 4);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
