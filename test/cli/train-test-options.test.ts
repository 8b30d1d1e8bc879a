import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const env = { ...process.env, PAPO_DEBUG: '' };

test('papo train reports avg@k and the failures by class before and after, and logs them', () => {
  const run = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'papo-train-test-k-')), 'run');
  const r = spawnSync(
    process.execPath,
    [
      'bin/papo.js',
      'train',
      'trainer.max_steps=1',
      'data.rollout_batch_size=4',
      'worker.rollout.n=2',
      'trainer.test_limit=24',
      'trainer.test_k=2',
      'trainer.test_errors=true',
      `trainer.save_checkpoint_path=${run}`,
    ],
    { encoding: 'utf8', env },
  );
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const out = r.stdout + r.stderr;
  for (const label of ['before', 'after']) {
    assert.match(out, new RegExp(`${label}: held-out test avg@2 \\(temperature 1\\) [0-9.]+% overall`));
    assert.match(out, new RegExp(`${label}: greedy failures on vision-dependent questions: `));
  }
  assert.match(out, /change of avg@2: [+-][0-9.]+ points overall/);
  const events = fs
    .readFileSync(path.join(run, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const after = events.find((e) => e.event === 'test_after');
  assert.equal(after.sampled.k, 2);
  assert.equal(after.sampled.accuracy.overall.n, 48); // 24 prompts x 2 samples
  const failures = Object.values(after.errors.overall as Record<string, number>).reduce((a, b) => a + b, 0);
  assert.equal(failures, Math.round(24 * (1 - after.accuracy.overall.accuracy)));
});
