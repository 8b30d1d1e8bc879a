/**
 * A run whose engine shares its calls over two workers (`worker.rollout.threads=2`, the default
 * `data_parallel_size` 2: one thread each) resumes and replays to the bit, on-policy and with `max_staleness` 1
 * (sampling pinned to older versions, which every worker holds).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { replayRun } from '../../pipelines/replay.ts';
import { resumeNotes, runTrain } from '../../pipelines/train.ts';
import { trainConfig } from '../../pipelines/train-config.ts';
import type { Checkpoint } from '../../storage/checkpoints.ts';
import { trainInputFromArgs } from '../../cli/train-args.ts';
import { engineThreads } from '../../models/engine/parts.ts';
import { algorithmicMetrics, tinyPolicyInTmp, tinyRunOverrides } from './tiny-run.ts';

let tmp: string;
let weights: string;
before(async () => {
  ({ tmp, weights } = await tinyPolicyInTmp('papo-engine-workers-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const TWO_WORKERS = ['worker.rollout.threads=2', 'worker.rollout.data_parallel_size=2', 'trainer.save_freq=1'];

for (const S of [0, 1]) {
  test(`max_staleness ${S}: interrupted after step 2 and resumed, the run equals the uninterrupted one; step 2 replays exactly`, async () => {
    assert.equal(engineThreads(2, 2).workers, 2);
    const keys = [...TWO_WORKERS, `trainer.max_staleness=${S}`];
    const whole = path.join(tmp, `whole-${S}`);
    await runTrain(trainInputFromArgs({}, [...tinyRunOverrides(weights, whole, 4), ...keys]), { quiet: true });
    const parts = path.join(tmp, `parts-${S}`);
    await runTrain(trainInputFromArgs({}, [...tinyRunOverrides(weights, parts, 2), ...keys]), { quiet: true });
    const saved = JSON.parse(fs.readFileSync(path.join(parts, 'config.json'), 'utf8')).worker.rollout;
    assert.deepEqual([saved.threads, saved.data_parallel_size], [2, 2]);
    await runTrain(trainInputFromArgs({ resume: parts }, ['trainer.max_steps=4']), { quiet: true, resumeOnly: true });
    assert.deepEqual(algorithmicMetrics(path.join(parts, 'metrics.jsonl')), algorithmicMetrics(path.join(whole, 'metrics.jsonl')));
    const replay = await replayRun(parts, 2);
    assert.deepEqual(replay.differing, []);
    assert.deepEqual(replay.weights?.differing, []);
  });
}

test('a resume that changes worker.rollout.threads says its log-probs differ in the last bits; one that changes data_parallel_size is refused', () => {
  const saved = trainConfig({});
  const checkpoint = {} as Checkpoint;
  const more = trainConfig({ worker: { rollout: { threads: 4 } } });
  const notes = resumeNotes(more, 'runs/x', { config: saved, from: 'checkpoint step_000002', checkpoint });
  assert.match(notes.join('\n'), /resuming with changed settings: worker\.rollout\.threads: 2 -> 4/);
  assert.match(notes.join('\n'), /differ from the uninterrupted run's in their last bits/);
  assert.deepEqual(resumeNotes(saved, 'runs/x', { config: saved, from: 'checkpoint step_000002', checkpoint }), []);
  const fewer = trainConfig({ worker: { rollout: { data_parallel_size: 1 } } });
  assert.throws(
    () => resumeNotes(fewer, 'runs/x', { config: saved, from: 'checkpoint step_000002', checkpoint }),
    /worker\.rollout\.data_parallel_size: 2 -> 1/,
  );
});
