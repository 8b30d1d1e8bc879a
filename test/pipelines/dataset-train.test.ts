/**
 * A task exported as parquet trains as the task itself: the same records give the same run, metric for
 * metric (timings aside), and a run from parquet files works end to end.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initTf } from '../../util/tf-backend.ts';
import { runTrain } from '../../pipelines/train.ts';
import type { TrainConfigInput } from '../../pipelines/train-config.ts';
import { DigitsTask } from '../../tasks/digits/task.ts';
import { exportDataset } from '../../tasks/loader/dataset-export.ts';
import { registerTask } from '../../tasks/registry.ts';
import type { Split, Task } from '../../tasks/types.ts';
import { algorithmicMetrics, tinyPolicyInTmp } from './tiny-run.ts';

await initTf();

/** The first records of each split of the digits task: small enough to export whole. */
const SIZES: Record<Split, number> = { train: 16, validation: 4, test: 6 };
function digitsHead(): Task {
  const d = new DigitsTask({ seed: 0, families: ['max', 'count'] });
  return {
    name: 'digits-head',
    imageHeight: d.imageHeight,
    imageWidth: d.imageWidth,
    families: d.families,
    fingerprint: `head/${d.fingerprint}`,
    size: (split) => Math.min(SIZES[split], d.size(split)),
    recordAt: (split, i) => d.recordAt(split, i),
  };
}
registerTask('digits-head', digitsHead);

let tmp: string;
let weights: string;
before(async () => {
  ({ tmp, weights } = await tinyPolicyInTmp('papo-dataset-train-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function config(run: string, data: TrainConfigInput['data']): TrainConfigInput {
  return {
    data: { ...data, rollout_batch_size: 4, max_response_length: 6, seed: 5 },
    algorithm: { preset: 'papo_g' },
    worker: { actor: { model: { model_path: weights }, global_batch_size: 2, optim: { lr: 5e-3 } }, rollout: { n: 2, threads: 1 } },
    trainer: { max_steps: 2, save_freq: 0, test_before_and_after: true, test_limit: 0, save_checkpoint_path: run },
  };
}

test('digits exported as parquet and trained from the files: the same run as the task itself, before/after test included', async () => {
  const files = path.join(tmp, 'data');
  exportDataset(digitsHead(), { format: 'parquet', out: files, splits: ['train', 'test'] });
  const builtIn = await runTrain(config(path.join(tmp, 'builtin'), { task: 'digits-head' }), { quiet: true });
  const fromFiles = await runTrain(
    config(path.join(tmp, 'parquet'), { train_files: path.join(files, 'train.parquet'), val_files: path.join(files, 'test.parquet') }),
    { quiet: true },
  );
  const a = algorithmicMetrics(path.join(tmp, 'builtin', 'metrics.jsonl'));
  const b = algorithmicMetrics(path.join(tmp, 'parquet', 'metrics.jsonl'));
  assert.equal(b.length, 2);
  assert.deepEqual(b, a);
  for (const when of ['before', 'after'] as const) {
    assert.equal(fromFiles[when]?.records, SIZES.test);
    assert.deepEqual(fromFiles[when]?.greedy, builtIn[when]?.greedy, `${when}: the same greedy test, record for record`);
  }
  const saved = JSON.parse(fs.readFileSync(path.join(tmp, 'parquet', 'config.json'), 'utf8'));
  assert.equal(saved.data.task, 'dataset');
});
