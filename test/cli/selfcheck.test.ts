import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

test('papo selfcheck (the README main job) passes and reports every preset x mode', () => {
  const r = spawnSync(process.execPath, ['bin/papo.js', 'selfcheck'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^OK: worst relative difference/m);
  assert.equal(r.stdout.split('\n').filter((l) => /^(grpo|dapo|papo_g|papo_d|vppo) /.test(l)).length, 20);
});
