/**
 * Exact resume: a run stopped after its checkpoint at step k and resumed ends with the same weights,
 * optimizer state, metrics and rollout log as the run never interrupted, bit for bit, with max_staleness
 * 0 and 1 (and dynamic sampling, whose extra rounds must draw prompts in the same order).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initTf } from '../../util/tf-backend.ts';
import { CheckpointStore } from '../../storage/checkpoints.ts';
import { RolloutLog } from '../../storage/rollout-log.ts';
import { runTrain } from '../../pipelines/train.ts';
import { scalarsByStep } from '../storage/tfevents-reader.ts';
import type { TrainConfigInput } from '../../pipelines/train-config.ts';
import { algorithmicMetrics, tinyPolicyInTmp } from './tiny-run.ts';

await initTf();

let tmp: string;
let weights: string;
before(async () => {
  ({ tmp, weights } = await tinyPolicyInTmp('papo-resume-test-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function config(run: string, steps: number, staleness: number, dynamic: boolean): TrainConfigInput {
  return {
    data: { task: 'digits', families: ['max', 'count'], rollout_batch_size: 4, max_response_length: 6, seed: 5 },
    algorithm: { preset: 'papo_g', dynamic_sampling: dynamic, dynamic_sampling_max_tries: 3 },
    worker: {
      actor: { model: { model_path: weights }, global_batch_size: 2, optim: { lr: 5e-3 } },
      rollout: { n: 4, threads: 1 },
    },
    trainer: { max_steps: steps, max_staleness: staleness, save_freq: 2, save_limit: 0, test_before_and_after: false, save_checkpoint_path: run },
  };
}

async function finalState(run: string) {
  const store = new CheckpointStore(run);
  return store.load((await store.latest())!);
}

for (const [staleness, dynamic] of [
  [0, false],
  [1, false],
  [1, true],
] as const) {
  test(`max_staleness ${staleness}${dynamic ? ' with dynamic sampling' : ''}: stopped at step 3 and resumed, the run ends as the uninterrupted one, to the bit`, async () => {
    const whole = path.join(tmp, `whole-${staleness}-${dynamic}`);
    const parts = path.join(tmp, `parts-${staleness}-${dynamic}`);
    const a = await runTrain(config(whole, 6, staleness, dynamic), { quiet: true });
    assert.equal(a.steps.length, 6);
    const b1 = await runTrain(config(parts, 3, staleness, dynamic), { quiet: true });
    assert.equal(b1.steps.length, 3);
    const b2 = await runTrain(
      { ...config(parts, 6, staleness, dynamic), trainer: { ...config(parts, 6, staleness, dynamic).trainer, resume_mode: 'auto' } },
      { quiet: true },
    );
    assert.equal(b2.resumedFrom, 3);
    assert.deepEqual(
      b2.steps.map((s) => s.step),
      [4, 5, 6],
    );

    const [x, y] = [await finalState(whole), await finalState(parts)];
    assert.equal(y.step, 6);
    for (const k of Object.keys(x.policy.params)) {
      assert.deepEqual(y.policy.params[k], x.policy.params[k], `parameter ${k}`);
      assert.deepEqual(y.optimizer.m[k], x.optimizer.m[k], `m ${k}`);
      assert.deepEqual(y.optimizer.v[k], x.optimizer.v[k], `v ${k}`);
    }
    assert.equal(y.optimizer.step, x.optimizer.step);
    assert.deepEqual(y.state.cursor, x.state.cursor);
    assert.deepEqual(y.state.versions, x.state.versions);
    assert.match(String(y.state.config_hash), /^[0-9a-f]{64}$/);
    assert.equal(y.state.config_hash, x.state.config_hash, 'max_steps differs between the runs, and is not hashed');
    assert.deepEqual(algorithmicMetrics(path.join(parts, 'metrics.jsonl')), algorithmicMetrics(path.join(whole, 'metrics.jsonl')));
    const [la, lb] = [new RolloutLog(whole), new RolloutLog(parts)];
    assert.deepEqual(await lb.steps(), [1, 2, 3, 4, 5, 6]);
    for (const step of await la.steps()) assert.deepEqual(await lb.read(step), await la.read(step), `rollout step ${step}`);
    // TensorBoard: one event file per launch, every step once, the same values.
    const scalars = (run: string) =>
      [...scalarsByStep(path.join(run, 'tensorboard'))].map(([step, m]) => [
        step,
        Object.fromEntries(Object.entries(m).filter(([k]) => !k.startsWith('timing_s/') && k !== 'perf/throughput')),
      ]);
    assert.equal(fs.readdirSync(path.join(parts, 'tensorboard')).length, 2);
    assert.deepEqual(scalars(parts), scalars(whole));
  });
}

test('a resume refuses a config that changes what the run computes, naming the keys; allows and lists harmless ones', async () => {
  const run = path.join(tmp, 'refuse');
  await runTrain(config(run, 2, 0, false), { quiet: true });
  const changed = config(run, 4, 0, false);
  (changed.worker!.actor!.optim as { lr: number }).lr = 1e-3;
  (changed.data as { rollout_batch_size: number }).rollout_batch_size = 8;
  await assert.rejects(
    runTrain({ ...changed, trainer: { ...changed.trainer, resume_mode: 'auto' } }, { quiet: true }),
    (err: Error) =>
      /cannot resume .*config differs/.test(err.message) &&
      err.message.includes('worker.actor.optim.lr: 0.005 -> 0.001') &&
      err.message.includes('data.rollout_batch_size: 4 -> 8'),
  );
  // a fresh run into the same directory is refused too, and --force moves the old run aside
  await assert.rejects(runTrain(config(run, 2, 0, false), { quiet: true }), /already holds a run .*--resume.*--force/);
  const r = await runTrain(config(run, 1, 0, false), { quiet: true, force: true });
  assert.equal(r.steps.length, 1);
  const aside = fs.readdirSync(run).filter((n) => n.startsWith('previous-'));
  assert.equal(aside.length, 1);
  assert.ok(fs.existsSync(path.join(run, aside[0], 'checkpoints', 'latest')), 'the earlier run was moved, not deleted');
});
