import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TrainConfigInput } from '../../pipelines/train-config.ts';
import { runTrain } from '../../pipelines/train.ts';
import { initTf } from '../../util/tf-backend.ts';
import { algorithmicMetrics, tinyPolicyInTmp } from './tiny-run.ts';

await initTf();

let tmp: string;
let weights: string;
before(async () => {
  ({ tmp, weights } = await tinyPolicyInTmp('papo-load-checkpoint-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const config = (run: string, steps: number, load?: string): TrainConfigInput => ({
  data: { task: 'digits', families: ['max', 'count'], rollout_batch_size: 4, max_response_length: 6, seed: 5 },
  worker: { actor: { model: { model_path: weights }, global_batch_size: 2, optim: { lr: 5e-3 } }, rollout: { n: 2, threads: 1 } },
  trainer: {
    max_steps: steps,
    save_freq: 1,
    save_limit: 0,
    test_before_and_after: false,
    save_checkpoint_path: run,
    ...(load ? { load_checkpoint_path: load } : {}),
  },
});

test("trainer.load_checkpoint_path: a new run starts from another run's checkpoint and computes what that run computed next", async () => {
  const a = path.join(tmp, 'a');
  await runTrain(config(a, 3), { quiet: true });
  // from a checkpoint directory: step 1's weights, optimizer state and data position; steps 2..3 as run a had them
  const b = path.join(tmp, 'b');
  const rb = await runTrain(config(b, 3, path.join(a, 'checkpoints', 'step_000001')), { quiet: true });
  assert.equal(rb.resumedFrom, 1);
  assert.deepEqual(algorithmicMetrics(path.join(b, 'metrics.jsonl')), algorithmicMetrics(path.join(a, 'metrics.jsonl')).slice(1));
  const log = fs.readFileSync(path.join(b, 'log.jsonl'), 'utf8');
  assert.match(log, /starting from .*a\/checkpoints\/step_000001 \(step 1\): its weights, optimizer state and data position/);
  // from a run directory: its latest checkpoint (step 3)
  const c = path.join(tmp, 'c');
  const rc = await runTrain(config(c, 4, a), { quiet: true });
  assert.equal(rc.resumedFrom, 3);
  assert.deepEqual(
    algorithmicMetrics(path.join(c, 'metrics.jsonl')).map((m) => m.step),
    [4],
  );
  // once the new run has checkpoints of its own, a resume continues from those
  const rc2 = await runTrain({ ...config(c, 5, a), trainer: { ...config(c, 5, a).trainer, resume_mode: 'auto' } }, { quiet: true });
  assert.equal(rc2.resumedFrom, 4);
});

test('trainer.load_checkpoint_path: a path that is no checkpoint is refused, naming the key and the path', async () => {
  const run = path.join(tmp, 'bad');
  await assert.rejects(runTrain(config(run, 2, path.join(tmp, 'nowhere')), { quiet: true }), /trainer\.load_checkpoint_path: .*nowhere does not exist/);
  await assert.rejects(
    runTrain(config(path.join(tmp, 'bad2'), 2, weights), { quiet: true }),
    /trainer\.load_checkpoint_path: .*init is neither a run directory nor a checkpoint directory/,
  );
});
