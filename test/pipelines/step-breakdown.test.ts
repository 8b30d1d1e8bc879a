/**
 * The step's breakdown: timing_s/step = the stage timings + timing_s/other - timing_s/overlap
 * (operators/stage-clock.ts; save_wait comes after the sink and is not in the sum), on tiny runs strictly on-policy and with sampling under the update.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initTf } from '../../util/tf-backend.ts';
import { runTrain } from '../../pipelines/train.ts';
import type { TrainConfigInput } from '../../pipelines/train-config.ts';
import { tinyPolicyInTmp } from './tiny-run.ts';

await initTf();

let tmp: string;
let weights: string;
before(async () => {
  ({ tmp, weights } = await tinyPolicyInTmp('papo-step-breakdown-test-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function config(name: string, maxStaleness: number): TrainConfigInput {
  return {
    data: { task: 'digits', families: ['max', 'count'], rollout_batch_size: 4, max_response_length: 6, seed: 5 },
    algorithm: { preset: 'papo_g', kl_coef: 0.01 },
    worker: { actor: { model: { model_path: weights }, global_batch_size: 2 }, rollout: { n: 2, threads: 1 } },
    trainer: { max_steps: 3, max_staleness: maxStaleness, test_before_and_after: false, save_checkpoint_path: path.join(tmp, name) },
  };
}

for (const staleness of [0, 1]) {
  test(`max_staleness ${staleness}: the stage timings + other - overlap sum to timing_s/step`, async () => {
    const r = await runTrain(config(`s${staleness}`, staleness), { quiet: true, noSave: true });
    assert.equal(r.steps.length, 3);
    for (const s of r.steps) {
      const m = s.metrics;
      const stages = Object.keys(m).filter(
        (k) => k.startsWith('timing_s/') && !['timing_s/step', 'timing_s/other', 'timing_s/overlap', 'timing_s/save_wait'].includes(k),
      );
      for (const k of ['timing_s/gen', 'timing_s/reward', 'timing_s/masked_log_prob', 'timing_s/ref', 'timing_s/adv', 'timing_s/update_actor'])
        assert.ok(stages.includes(k), `step ${s.step}: ${k} in ${stages}`);
      const sum = stages.reduce((a, k) => a + m[k], 0) + m['timing_s/other'] - m['timing_s/overlap'];
      assert.ok(Math.abs(sum - m['timing_s/step']) <= 1e-9 * Math.max(1, m['timing_s/step']), `step ${s.step}: ${sum} vs ${m['timing_s/step']}`);
      assert.ok(m['timing_s/other'] >= 0 && m['timing_s/other'] <= m['timing_s/step'], `step ${s.step}: other ${m['timing_s/other']}`);
    }
  });
}
