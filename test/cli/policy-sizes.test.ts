import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { policyConfig } from '../../models/config.ts';
import { paramCount } from '../../models/params.ts';

const env = { ...process.env, PAPO_DEBUG: '' };
const papo = (args: string[]) => spawnSync(process.execPath, ['bin/papo.js', ...args], { encoding: 'utf8', env });

test('papo sft --size xxl (25.4M parameters) and papo train from its weights each run one step', async () => {
  // ~400 MB of weights and optimizer state per run: in memory where the system has a tmpfs.
  const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const dir = fs.mkdtempSync(path.join(base, 'papo-sizes-'));
  try {
    const sft = path.join(dir, 'sft');
    const r1 = papo(['sft', '--size', 'xxl', '--steps', '1', '--batch-size', '1', '--save-every', '0', '--out', sft]);
    assert.equal(r1.status, 0, r1.stderr);
    assert.match(r1.stderr, /sft: 1 steps in .*, final loss \d/);
    const group = JSON.parse(fs.readFileSync(path.join(sft, 'weights', 'zarr.json'), 'utf8'));
    const config = policyConfig(group.attributes.policy_config);
    assert.deepEqual([config.dModel, config.nHeads, config.nLayers], [512, 16, 8]);
    assert.equal(paramCount(config), 25421824);

    const run = path.join(dir, 'run');
    const r2 = papo([
      'train',
      'data.task=digits',
      'data.families=[max, count]',
      'data.rollout_batch_size=1',
      'data.max_response_length=2',
      `worker.actor.model.model_path=${JSON.stringify(path.join(sft, 'weights'))}`,
      'worker.actor.global_batch_size=2',
      'worker.rollout.n=2',
      'worker.rollout.threads=1',
      'trainer.test_before_and_after=false',
      'trainer.max_steps=1',
      `trainer.save_checkpoint_path=${JSON.stringify(run)}`,
    ]);
    assert.equal(r2.status, 0, r2.stderr);
    const steps = fs
      .readFileSync(path.join(run, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number>);
    assert.equal(steps.length, 1);
    assert.ok(Number.isFinite(steps[0]['actor/pg_loss']) && Number.isFinite(steps[0]['actor/grad_norm']), JSON.stringify(steps[0]));
    assert.equal(steps[0]['version_stats/policy_version'], 1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
