/**
 * A run saved before `worker.actor.share_prefix` and `worker.rollout.data_parallel_size` existed trained with
 * the update's full pass and one engine worker: resumed or replayed, it computes what it did, to the bit (a
 * key missing from a saved config takes the value the run was trained with, not this version's default).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { replayRun } from '../../pipelines/replay.ts';
import { savedTrainConfig } from '../../pipelines/train-config.ts';
import { runTrain } from '../../pipelines/train.ts';
import { trainInputFromArgs } from '../../cli/train-args.ts';
import { algorithmicMetrics, tinyPolicyInTmp, tinyRunOverrides } from './tiny-run.ts';

let tmp: string;
let weights: string;
/** the uninterrupted full-pass run of 3 steps */
let whole: string;
/** 2 steps of the same run, its saved configs as a version before the key wrote them */
let older: string;
const FULL = ['worker.actor.share_prefix=false', 'worker.rollout.data_parallel_size=1', 'trainer.save_freq=1'];
before(async () => {
  ({ tmp, weights } = await tinyPolicyInTmp('papo-saved-compat-'));
  whole = path.join(tmp, 'whole');
  await runTrain(trainInputFromArgs({}, [...tinyRunOverrides(weights, whole, 3), ...FULL]), { quiet: true });
  older = path.join(tmp, 'older');
  await runTrain(trainInputFromArgs({}, [...tinyRunOverrides(weights, older, 2), ...FULL]), { quiet: true });
  asBeforeTheKey(older);
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A copy of the older run, for one test to continue. */
function olderRun(name: string): string {
  const dir = path.join(tmp, name);
  fs.cpSync(older, dir, { recursive: true });
  return dir;
}

/** Removes the two keys from the run's config.json and from every checkpoint's saved config. */
function asBeforeTheKey(run: string): void {
  const strip = (cfg: { worker: { actor: Record<string, unknown>; rollout: Record<string, unknown> } }) => {
    assert.equal(cfg.worker.actor.share_prefix, false);
    assert.equal(cfg.worker.rollout.data_parallel_size, 1);
    delete cfg.worker.actor.share_prefix;
    delete cfg.worker.rollout.data_parallel_size;
  };
  const configFile = path.join(run, 'config.json');
  const cfg = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  strip(cfg);
  fs.writeFileSync(configFile, JSON.stringify(cfg, null, 2));
  for (const step of fs.readdirSync(path.join(run, 'checkpoints')).filter((n) => n.startsWith('step_'))) {
    const f = path.join(run, 'checkpoints', step, 'zarr.json');
    const meta = JSON.parse(fs.readFileSync(f, 'utf8'));
    strip(meta.attributes.state.config);
    fs.writeFileSync(f, JSON.stringify(meta, null, 2));
  }
}

test('savedTrainConfig: a saved config without the keys reads share_prefix false and data_parallel_size 1; one with them is unchanged', () => {
  const old = { worker: { actor: { ppo_epochs: 1 }, rollout: { n: 8 } } };
  assert.deepEqual(savedTrainConfig(old), { worker: { actor: { ppo_epochs: 1, share_prefix: false }, rollout: { n: 8, data_parallel_size: 1 } } });
  assert.deepEqual(old, { worker: { actor: { ppo_epochs: 1 }, rollout: { n: 8 } } }, 'the input is not changed');
  const between = { worker: { actor: { share_prefix: true }, rollout: { n: 8 } } };
  assert.deepEqual(savedTrainConfig(between), { worker: { actor: { share_prefix: true }, rollout: { n: 8, data_parallel_size: 1 } } });
  const now = { worker: { actor: { share_prefix: true }, rollout: { data_parallel_size: 2 } } };
  assert.equal(savedTrainConfig(now), now);
});

test('an older run (full-pass update, no share_prefix in its saved config) resumes and replays to the bit', async () => {
  const parts = olderRun('parts');
  const replay = await replayRun(parts, 2);
  assert.deepEqual(replay.differing, []);
  assert.deepEqual(replay.weights?.differing, []);

  await runTrain(trainInputFromArgs({ resume: parts }, ['trainer.max_steps=3']), { quiet: true, resumeOnly: true });
  assert.deepEqual(algorithmicMetrics(path.join(parts, 'metrics.jsonl')), algorithmicMetrics(path.join(whole, 'metrics.jsonl')));
  const resumed = JSON.parse(fs.readFileSync(path.join(parts, 'config.json'), 'utf8'));
  assert.equal(resumed.worker.actor.share_prefix, false);
  assert.equal(resumed.worker.rollout.data_parallel_size, 1);
});

test('an older run continued with a command line that does not name the key (as a study does) keeps its full pass', async () => {
  const parts = olderRun('parts-study');
  await runTrain(trainInputFromArgs({}, [...tinyRunOverrides(weights, parts, 3), 'trainer.save_freq=1', 'trainer.resume_mode=auto']), { quiet: true });
  assert.deepEqual(algorithmicMetrics(path.join(parts, 'metrics.jsonl')), algorithmicMetrics(path.join(whole, 'metrics.jsonl')));
  const continued = JSON.parse(fs.readFileSync(path.join(parts, 'config.json'), 'utf8')).worker;
  assert.deepEqual([continued.actor.share_prefix, continued.rollout.data_parallel_size], [false, 1]);
  // naming the key with another value is a change the resume refuses
  const named = olderRun('parts-named');
  await assert.rejects(
    runTrain(
      trainInputFromArgs({}, [...tinyRunOverrides(weights, named, 3), 'trainer.save_freq=1', 'trainer.resume_mode=auto', 'worker.actor.share_prefix=true']),
      { quiet: true },
    ),
    /worker\.actor\.share_prefix: false -> true/,
  );
});
