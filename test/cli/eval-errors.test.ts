import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

test('papo eval --errors prints the failures by class and writes them to --json', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-eval-errors-'));
  const json = path.join(dir, 'report.json');
  const r = spawnSync(process.execPath, ['bin/papo.js', 'eval', '--weights', 'assets/warm-start', '--limit', '40', '--k', '0', '--errors', '--json', json], {
    encoding: 'utf8',
    env: { ...process.env, PAPO_DEBUG: '', PAPO_LOG_LEVEL: '' },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^greedy failures by class \(share of the group's failures\):$/m);
  assert.match(r.stdout, /^class +overall +vision-dependent +general$/m);
  for (const c of ['format', 'perception', 'reasoning', 'calculation', 'inconsistency', 'unclassified']) {
    assert.match(r.stdout, new RegExp(`^${c} +\\d+ +(\\d+\\.\\d%| - ) +\\d+ `, 'm'), c);
  }
  const report = JSON.parse(fs.readFileSync(json, 'utf8'));
  const e = report.errors;
  assert.equal(e.perRecord.length, 40);
  const failures = e.perRecord.filter((c: string | null) => c !== null).length;
  assert.equal(e.overall.failures, failures);
  assert.equal(failures, Math.round(40 * (1 - report.greedy.accuracy.overall.accuracy)));
  assert.match(r.stdout, new RegExp(`^failures +${failures} of 40 `, 'm'));
  assert.equal(e.overall.counts.unclassified, 0, 'digits classifies every failure');
  fs.rmSync(dir, { recursive: true, force: true });
});
