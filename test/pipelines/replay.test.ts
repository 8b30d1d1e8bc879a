/**
 * Replay: logged rollouts fed back through the update sink reproduce a step's metrics and the run's weights
 * bit for bit, from a checkpoint or from the starting weights; `papo replay` says so; the rollout log
 * reads back what the run trained on.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initTf } from '../../util/tf-backend.ts';
import { RolloutLog } from '../../storage/rollout-log.ts';
import { runTrain, type TrainResult } from '../../pipelines/train.ts';
import { replayRun } from '../../pipelines/replay.ts';
import { tinyPolicyInTmp, TINY_POLICY } from './tiny-run.ts';
import { savePolicyWeights } from '../../storage/policy-weights.ts';
import { initParams } from '../../models/params.ts';

await initTf();

let tmp: string;
let run: string;
let trained: TrainResult;
const batches = new Map<number, { responses: Int32Array[]; advantages: Float32Array; ids: string[] }>();

before(async () => {
  let weights: string;
  ({ tmp, weights } = await tinyPolicyInTmp('papo-replay-test-'));
  run = path.join(tmp, 'run');
  trained = await runTrain(
    {
      data: { task: 'digits', families: ['max', 'count'], rollout_batch_size: 4, max_response_length: 6, seed: 5 },
      algorithm: { preset: 'papo_g' },
      worker: { actor: { model: { model_path: weights }, global_batch_size: 2, ppo_epochs: 2, optim: { lr: 5e-3 } }, rollout: { n: 4, threads: 1 } },
      trainer: { max_steps: 5, max_staleness: 1, save_freq: 2, save_limit: 0, test_before_and_after: false, save_checkpoint_path: run },
    },
    {
      quiet: true,
      hooks: {
        onStep: (s) => void batches.set(s.step, { responses: [...s.batch.responses], advantages: s.batch.advantages, ids: s.batch.records.map((r) => r.id) }),
      },
    },
  );
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('the rollout log holds exactly what each step trained on', async () => {
  assert.equal(trained.steps.length, 5);
  const log = new RolloutLog(run);
  assert.deepEqual(await log.steps(), [1, 2, 3, 4, 5]);
  for (const [step, b] of batches) {
    const rec = await log.read(step);
    assert.deepEqual(rec.recordIds, b.ids);
    assert.deepEqual(rec.responses, b.responses);
    assert.deepEqual(rec.advantages, b.advantages);
    assert.equal(rec.groupSize, 4);
    assert.ok(rec.maskedLogprobs && rec.refLogprobs, 'PAPO-G logs masked and reference log-probs');
    assert.equal(typeof rec.maskSeed, 'number');
  }
});

test('replaying a step from the checkpoint before it reproduces its metrics and the checkpointed weights, bit for bit', async () => {
  const r = await replayRun(run, 4);
  assert.equal(r.from, 'step_000002');
  assert.deepEqual(r.replayedSteps, [3, 4]);
  assert.deepEqual(r.differing, []);
  assert.ok(Object.keys(r.metrics).includes('actor/pg_loss') && Object.keys(r.metrics).includes('actor/kl_prcp_loss'));
  assert.equal(r.weights?.checkpoint, 'step_000004');
  assert.deepEqual(r.weights?.differing, []);
});

test("replaying the first step starts from the run's starting weights", async () => {
  const r = await replayRun(run, 1);
  assert.equal(r.from, undefined);
  assert.deepEqual(r.differing, []);
});

test('replaying from the start refuses starting weights that changed since the run began', async () => {
  const other = path.join(tmp, 'run-moved');
  fs.cpSync(run, other, { recursive: true });
  const changed = path.join(tmp, 'init-changed');
  await savePolicyWeights(changed, { config: TINY_POLICY, params: initParams(TINY_POLICY, 2) });
  const configFile = path.join(other, 'config.json');
  const config = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  config.worker.actor.model.model_path = changed;
  fs.writeFileSync(configFile, JSON.stringify(config));
  await assert.rejects(replayRun(other, 1), /replay: the starting weights at .*init-changed changed since .*run-moved began \(fingerprint \w+, now \w+\)/);
});

test('papo replay prints the comparison and exits 0 when exact; a step not logged is a clear error', () => {
  const ok = spawnSync(process.execPath, ['bin/papo.js', 'replay', run, '--step', '5'], { encoding: 'utf8', env: { ...process.env, PAPO_DEBUG: '' } });
  assert.equal(ok.status, 0, ok.stderr + ok.stdout);
  assert.match(ok.stdout, /replayed steps 5\.\.5 from checkpoint step_000004/);
  assert.match(ok.stdout, /vs checkpoint step_000005: identical, bit for bit/);
  assert.match(ok.stdout, /replay: exact/);
  const bad = spawnSync(process.execPath, ['bin/papo.js', 'replay', run, '--step', '9'], { encoding: 'utf8', env: { ...process.env, PAPO_DEBUG: '' } });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /step 9 is not in the rollout log .*logged: 1, 2, 3, 4, 5/);
});

test("offline training on a logged run (--from-rollouts) with another objective: the same prompts and responses, this run's log-probs and advantages", async () => {
  const offline = path.join(tmp, 'offline');
  const r = await runTrain(
    {
      data: { task: 'digits', families: ['max', 'count'], rollout_batch_size: 4, max_response_length: 6, seed: 5, rollouts_path: run },
      algorithm: { preset: 'grpo' },
      worker: { actor: { model: { model_path: path.join(tmp, 'init') }, global_batch_size: 0, optim: { lr: 5e-3 } }, rollout: { n: 4, threads: 1 } },
      trainer: { max_steps: 10, test_before_and_after: false, save_checkpoint_path: offline },
    },
    { quiet: true },
  );
  assert.deepEqual(
    r.steps.map((s) => s.step),
    [1, 2, 3, 4, 5],
    'one step per logged step, max_steps capped by the log',
  );
  const [src, dst] = [new RolloutLog(run), new RolloutLog(offline)];
  for (const step of [1, 5]) {
    const a = await src.read(step);
    const b = await dst.read(step);
    assert.deepEqual(b.responses, a.responses);
    assert.deepEqual(b.recordIds, a.recordIds);
    assert.deepEqual(b.rewards, a.rewards);
    assert.equal(b.maskedLogprobs, undefined, 'GRPO: no masked view');
    assert.ok(
      b.versions.every((v) => v === step - 1),
      "stamped with this run's version",
    );
  }
  const first = r.steps[0].metrics;
  assert.ok(Math.abs(first['actor/ppo_kl']) < 1e-6, `old log-probs are this policy's: ppo_kl ${first['actor/ppo_kl']}`);
  assert.equal(first['actor/kl_prcp_loss'], undefined);
});
