/**
 * How the log-prob passes of a step run: `worker.rollout.fused_logprobs` (the masked view and the reference
 * in one engine call) computes what two calls compute, bit for bit; `worker.rollout.share_prefix` (each
 * prompt's prefix once for its G responses) the same log-probs within 2e-6 of the full passes. The segment
 * options carry both (a shard job carries them to a rollout worker).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initTf } from '../../util/tf-backend.ts';
import { runTrain } from '../../pipelines/train.ts';
import { trainConfig, type TrainConfigInput } from '../../pipelines/train-config.ts';
import { rolloutSegmentOptions } from '../../pipelines/train-setup.ts';
import type { TrainedStep } from '../../operators/index.ts';
import { decodeJob, encodeJob } from '../../operators/shard-messages.ts';
import { rolloutSegment } from '../../operators/rollout-segment.ts';
import { makeRecords, promptBatch } from '../operators/fakes.ts';
import { digitShare, TINY_POLICY, tinyPolicyInTmp } from './tiny-run.ts';

await initTf();

let tmp: string;
let weights: string;
before(async () => {
  ({ tmp, weights } = await tinyPolicyInTmp('papo-logprob-passes-test-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function config(name: string, rollout: { fused_logprobs?: boolean; share_prefix?: boolean }, extra: { shard_size?: number } = {}): TrainConfigInput {
  return {
    data: { task: 'digits', families: ['max', 'count'], rollout_batch_size: 4, max_response_length: 6, seed: 5 },
    algorithm: { preset: 'papo_g', kl_coef: 0.01 },
    worker: { actor: { model: { model_path: weights }, global_batch_size: 2 }, rollout: { n: 3, threads: 1, ...rollout, ...extra } },
    trainer: { max_steps: 2, test_before_and_after: false, save_checkpoint_path: path.join(tmp, name) },
  };
}

async function run(name: string, rollout: { fused_logprobs?: boolean; share_prefix?: boolean }, extra: { shard_size?: number } = {}) {
  const steps: TrainedStep[] = [];
  await runTrain(config(name, rollout, extra), { quiet: true, noSave: true, hooks: { onStep: (s) => void steps.push(s) } });
  return { steps };
}

const untimed = (m: Record<string, number>) => Object.fromEntries(Object.entries(m).filter(([k]) => !k.startsWith('timing_s/') && k !== 'perf/throughput'));

test('the defaults fuse the passes and share prefixes; the segment options carry both', () => {
  const cfg = trainConfig(config('defaults', {}));
  assert.equal(cfg.worker.rollout.fused_logprobs, true);
  assert.equal(cfg.worker.rollout.share_prefix, true);
  assert.deepEqual(rolloutSegmentOptions(cfg, 6).logprobs, { fused: true, sharePrefix: true });
  const off = trainConfig(config('off', { fused_logprobs: false, share_prefix: false }));
  assert.deepEqual(rolloutSegmentOptions(off, 6).logprobs, { fused: false, sharePrefix: false });
});

test('fused_logprobs: the same run as two calls, bit for bit (full passes and shared prefixes, sharded or not)', async () => {
  for (const share of [false, true]) {
    for (const extra of [{}, { shard_size: 3 }]) {
      const fused = await run(`fused-${share}-${extra.shard_size ?? 0}`, { fused_logprobs: true, share_prefix: share }, extra);
      const apart = await run(`apart-${share}-${extra.shard_size ?? 0}`, { fused_logprobs: false, share_prefix: share }, extra);
      assert.deepEqual(
        fused.steps.map((s) => untimed(s.metrics)),
        apart.steps.map((s) => untimed(s.metrics)),
        `share_prefix ${share} ${JSON.stringify(extra)}`,
      );
      fused.steps.forEach((s, i) => {
        assert.deepEqual(s.batch.maskedLogprobs, apart.steps[i].batch.maskedLogprobs);
        assert.deepEqual(s.batch.refLogprobs, apart.steps[i].batch.refLogprobs);
      });
    }
  }
});

test('share_prefix: the first step samples the same responses and its masked-view and reference log-probs are within 2e-6 of full passes', async () => {
  const shared = await run('shared', { share_prefix: true });
  const full = await run('full', { share_prefix: false });
  const [s, f] = [shared.steps[0].batch, full.steps[0].batch];
  assert.deepEqual(s.responses, f.responses);
  assert.deepEqual(s.oldLogprobs, f.oldLogprobs);
  let d = 0;
  for (const key of ['maskedLogprobs', 'refLogprobs'] as const) {
    const a = s[key];
    const b = f[key];
    assert.ok(a && b, key);
    a.forEach((row, i) => row.forEach((x, t) => (d = Math.max(d, Math.abs(x - b[i][t])))));
  }
  assert.ok(d <= 2e-6, `max difference ${d}`);
});

test('a shard job carries the log-prob options to a rollout worker (which runs rolloutSegment with them); bad values are refused', async () => {
  const cfg = trainConfig(config('job', { fused_logprobs: false, share_prefix: true }));
  const segment = rolloutSegmentOptions(cfg, 6);
  const batch = promptBatch({ records: makeRecords(2) });
  const job = decodeJob(
    encodeJob({
      run: 'r1',
      launch: 'l1',
      step: 1,
      round: 1,
      shard: 1,
      version: 0,
      segment,
      reward: 'composite',
      rewardId: 'builtin:composite',
      policy: TINY_POLICY,
      batch,
    }),
    'papo.job.r1.1.1.1',
  );
  assert.equal(job.batch.records.length, 2);
  assert.deepEqual(job.segment.logprobs, { fused: false, sharePrefix: true });
  const engine = { config: TINY_POLICY, version: 0, sample: async () => assert.fail(), logProbs: async () => assert.fail(), setWeights: async () => {} };
  assert.throws(
    () => rolloutSegment(engine, digitShare, { ...segment, logprobs: { fused: 'yes' as unknown as boolean } }),
    /logprobs.fused must be a boolean, got yes/,
  );
});
