/**
 * `worker.rollout.shard_size` in process. The contract: every random choice of a prompt (its responses, its
 * mask) is drawn from the batch seed and the prompt's place in its round, never from its shard, so
 * - with shard_size equal to the rollout batch, a run is the unsharded run, bit for bit;
 * - with smaller shards the draws are the same (same responses, rewards and advantages); log-probs may
 *   differ in their last bits, since the engine pads each call's prompts to its longest;
 * - and for a given shard_size, where shards run never changes anything (test/pipelines/nats-rollouts.test.ts).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initTf } from '../../util/tf-backend.ts';
import { runTrain } from '../../pipelines/train.ts';
import type { TrainedStep } from '../../operators/index.ts';
import type { TrainConfigInput } from '../../pipelines/train-config.ts';
import { tinyPolicyInTmp } from './tiny-run.ts';

await initTf();

let tmp: string;
let weights: string;
before(async () => {
  ({ tmp, weights } = await tinyPolicyInTmp('papo-shard-size-test-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function config(name: string, shardSize?: number): TrainConfigInput {
  return {
    data: { task: 'digits', families: ['max', 'count'], rollout_batch_size: 4, max_response_length: 6, seed: 5 },
    algorithm: { preset: 'papo_g' },
    worker: {
      actor: { model: { model_path: weights }, global_batch_size: 2, optim: { lr: 5e-3 } },
      rollout: { n: 4, threads: 1, ...(shardSize ? { shard_size: shardSize } : {}) },
    },
    trainer: { max_steps: 2, test_before_and_after: false, save_checkpoint_path: path.join(tmp, name) },
  };
}

async function run(name: string, shardSize?: number) {
  const steps: TrainedStep[] = [];
  const r = await runTrain(config(name, shardSize), { quiet: true, noSave: true, hooks: { onStep: (s) => void steps.push(s) } });
  const metrics = r.steps.map((s) => Object.fromEntries(Object.entries(s.metrics).filter(([k]) => !k.startsWith('timing_s/') && k !== 'perf/throughput')));
  return { metrics, steps };
}

test('shard_size: the whole batch is the unsharded run bit for bit; smaller shards draw the same responses', async () => {
  const unsharded = await run('unsharded');
  const whole = await run('whole', 4);
  assert.deepEqual(whole.metrics, unsharded.metrics);
  for (const size of [1, 3]) {
    const sharded = await run(`size-${size}`, size);
    sharded.steps.forEach((s, i) => {
      const u = unsharded.steps[i].batch;
      assert.deepEqual(s.batch.responses, u.responses, `shard_size ${size}, step ${s.step}: responses`);
      assert.deepEqual([s.batch.rewards, s.batch.advantages], [u.rewards, u.advantages], `shard_size ${size}, step ${s.step}: rewards, advantages`);
      s.batch.oldLogprobs.forEach((row, j) => row.forEach((x, k) => assert.ok(Math.abs(x - u.oldLogprobs[j][k]) < 1e-4, `old log-prob ${j}/${k}`)));
      s.batch.maskedLogprobs?.forEach((row, j) => row.forEach((x, k) => assert.ok(Math.abs(x - u.maskedLogprobs![j][k]) < 1e-4, `masked log-prob ${j}/${k}`)));
    });
  }
});
