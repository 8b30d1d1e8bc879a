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

test("papo eval --reward scores with the user's reward instead of the task's verifier, its failures beside the accuracy", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-eval-reward-'));
  const reward = path.join(dir, 'half.mts');
  // throws on the records whose index is odd
  fs.writeFileSync(
    reward,
    "export const score = (x: { id: string; response: string; answer: string }) => {\n  if (Number(x.id.split('/').pop()) % 2) throw new Error('no rule for ' + x.id);\n  return { overall: 1, accuracy: 1, format: 1 };\n};\n",
  );
  const evalWith = (...extra: string[]) =>
    spawnSync(process.execPath, ['bin/papo.js', 'eval', '--weights', 'assets/warm-start', '--limit', '6', '--k', '0', ...extra], {
      encoding: 'utf8',
      env: { ...process.env, PAPO_DEBUG: '', PAPO_LOG_LEVEL: '' },
    });
  const user = evalWith('--reward', `${reward}:score`);
  assert.equal(user.status, 0, user.stderr);
  assert.match(
    user.stdout,
    /^scored by score: 3 of 6 reward calls failed, each scored 0 as a wrong response \(threw 3 \(first: record digits\/test\/1: threw: no rule for digits\/test\/1\)\)$/m,
  );
  assert.match(user.stdout, /^overall +6 +50\.0%/m, 'the three that succeeded score 1');
  const bad = evalWith('--reward', 'no-such-reward');
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^papo: --reward: 'no-such-reward' is neither a registered reward function/m);
  fs.rmSync(dir, { recursive: true, force: true });
});
