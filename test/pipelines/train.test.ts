/**
 * The composed RL graph (`runTrain`) on a tiny randomly initialised policy and a reward it can learn in
 * seconds: the share of digits in the response. Checks that reward rises (GRPO and PAPO-G), that the run
 * leaks no tensors, the staleness bound under max_staleness 0 and 1, and stopping through an AbortSignal.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { initTf, tf } from '../../util/tf-backend.ts';
import { digitShare, tinyPolicyInTmp } from './tiny-run.ts';
import { runTrain, type TrainResult } from '../../pipelines/train.ts';
import type { TrainConfigInput } from '../../pipelines/train-config.ts';

await initTf();

let tmp: string;
let weights: string;
before(async () => {
  ({ tmp, weights } = await tinyPolicyInTmp('papo-train-test-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function config(over: { preset?: 'grpo' | 'papo_g'; steps?: number; staleness?: number; lr?: number } = {}): TrainConfigInput {
  return {
    data: { task: 'digits', families: ['max'], rollout_batch_size: 8, max_response_length: 4, seed: 3 },
    algorithm: { preset: over.preset ?? 'grpo' },
    worker: {
      actor: { model: { model_path: weights }, global_batch_size: 0, micro_batch_size_per_device_for_update: 64, optim: { lr: over.lr ?? 1e-2 } },
      rollout: { n: 8, threads: 1 },
    },
    trainer: { max_steps: over.steps ?? 30, max_staleness: over.staleness ?? 0, test_before_and_after: false },
  };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const rewards = (r: TrainResult) => r.steps.map((s) => s.metrics['critic/score/mean']);

for (const preset of ['grpo', 'papo_g'] as const) {
  test(`${preset}: the reward of a tiny policy rises within 30 steps; no tensor outlives the run; on-policy throughout`, async () => {
    const tensors = tf.memory().numTensors;
    const r = await runTrain(config({ preset }), { quiet: true, noSave: true, reward: digitShare });
    assert.equal(tf.memory().numTensors, tensors, 'the run disposed its policy, optimizer and every step tensor');
    assert.equal(r.outcome, 'completed');
    assert.deepEqual(
      r.steps.map((s) => s.step),
      Array.from({ length: 30 }, (_, i) => i + 1),
    );
    assert.equal(r.steps.at(-1)!.version, 30);
    const xs = rewards(r);
    const first = mean(xs.slice(0, 5));
    const last = mean(xs.slice(-5));
    console.log(`${preset}: mean digit share, first 5 steps ${first.toFixed(3)}, last 5 steps ${last.toFixed(3)}`);
    assert.ok(first < 0.3, `a random policy writes few digits (${first})`);
    assert.ok(last > first + 0.3, `reward ${first} -> ${last}`);
    for (const s of r.steps) {
      assert.equal(s.metrics['version_stats/sample_staleness_max'], 0, `step ${s.step}`);
      assert.equal(s.metrics['actor/skipped_steps'], 0);
      assert.equal(s.metrics['data/groups'], 8);
    }
    if (preset === 'papo_g') {
      assert.ok(r.steps.every((s) => Number.isFinite(s.metrics['actor/kl_prcp_loss']) && Number.isFinite(s.metrics['actor/kl_loss'])));
    } else {
      assert.equal(r.steps[0].metrics['actor/kl_prcp_loss'], undefined);
    }
  });
}

test('max_staleness 1 overlaps sampling with the update: staleness reaches 1 and never exceeds it', async () => {
  const tensors = tf.memory().numTensors;
  // PAPO-G: its masked view scores each response under the version that sampled it, which must still be held.
  const r = await runTrain(config({ preset: 'papo_g', steps: 10, staleness: 1 }), { quiet: true, noSave: true, reward: digitShare });
  assert.equal(tf.memory().numTensors, tensors);
  assert.equal(r.steps.length, 10);
  const stale = r.steps.map((s) => s.metrics['version_stats/sample_staleness_max']);
  assert.ok(
    stale.every((x) => x <= 1),
    `staleness per step ${stale}`,
  );
  assert.ok(
    stale.some((x) => x > 0),
    `staleness per step ${stale}`,
  );
  assert.ok(
    r.steps.every((s) => s.metrics['version_stats/dropped_stale_groups'] === 0),
    'admission control keeps every group fresh enough',
  );
});

test('an AbortSignal stops the run after the steps in flight: outcome interrupted, fewer steps', async () => {
  const ac = new AbortController();
  const tensors = tf.memory().numTensors;
  const r = await runTrain(config({ steps: 30 }), {
    quiet: true,
    noSave: true,
    reward: digitShare,
    signal: ac.signal,
    hooks: { onStep: (s) => void (s.step === 3 && ac.abort()) },
  });
  assert.equal(tf.memory().numTensors, tensors);
  assert.equal(r.outcome, 'interrupted');
  assert.ok(r.steps.length >= 3 && r.steps.length <= 4, `${r.steps.length} steps`);

  // A signal aborted before the run starts: nothing is trained.
  const done = new AbortController();
  done.abort();
  const r0 = await runTrain(config({ steps: 30 }), { quiet: true, noSave: true, reward: digitShare, signal: done.signal });
  assert.equal(r0.outcome, 'interrupted');
  assert.equal(r0.steps.length, 0);
  assert.equal(tf.memory().numTensors, tensors);
});
